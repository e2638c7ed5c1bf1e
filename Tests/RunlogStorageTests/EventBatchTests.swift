import Testing

@testable import RunlogStorage

@Suite struct EventBatchTests {
    func rejection(_ body: String, json: Bool = false) -> EventRejection? {
        do {
            _ = json ? try EventBatch(json: Array(body.utf8)) : try EventBatch(ndjson: Array(body.utf8))
            return nil
        } catch {
            if case .invalidEvent(let rejection) = error { return rejection }
            return EventRejection(line: 0, reason: "\(error)")
        }
    }

    func rejection(bytes: [UInt8]) -> EventRejection? {
        do {
            _ = try EventBatch(ndjson: bytes)
            return nil
        } catch {
            if case .invalidEvent(let rejection) = error { return rejection }
            return EventRejection(line: 0, reason: "\(error)")
        }
    }

    @Test func aSourceIsLimitedInCharactersAsTheOpenAPIDocumentCountsThem() {
        func event(source: String) -> String { #"{"type":"a.b","source":"\#(source)"}"# }
        let wide = "\u{1D4E3}"  // 4 bytes of UTF-8, 12 of JSON escapes (a surrogate pair)
        let escapedWide = #"\ud835\udce3"#
        for (source, characters) in [
            (String(repeating: "a", count: 256), 256), (String(repeating: wide, count: 256), 256),
            (String(repeating: escapedWide, count: 256), 256), (String(repeating: #"\n"#, count: 256), 256),
            (String(repeating: #"\ud835"#, count: 256), 256),  // lone surrogates: one character each
        ] {
            #expect(rejection(event(source: source)) == nil, "\(characters) characters, \(source.utf8.count) bytes")
        }
        for source in [String(repeating: "a", count: 257), String(repeating: wide, count: 257), String(repeating: escapedWide, count: 256) + "a"] {
            #expect(rejection(event(source: source))?.reason == "'source' is longer than 256 characters")
        }
    }

    @Test func parsesNDJSONSkippingBlankLines() throws {
        let body = "{\"type\":\"run.started\"}\n\n  \r\n{\"type\":\"console.line\",\"payload\":{\"line\":\"hi\"},\"source\":\"engine\"}\r\n"
        let batch = try EventBatch(ndjson: Array(body.utf8))
        #expect(batch.count == 2)
        #expect(batch.type(at: 0) == "run.started")
        #expect(batch.type(at: 1) == "console.line")
        #expect(batch.payload(at: 1).map { String(decoding: $0, as: UTF8.self) } == #"{"line":"hi"}"#)
        #expect(batch.payload(at: 0) == nil)
    }

    @Test func stringsAreCheckedWhereverTheirSpecialBytesFall() throws {
        // The scanner skips plain ASCII eight bytes at a time: put each kind of special
        // byte at every offset of strings of many lengths, across those words.
        func event(_ string: [UInt8]) -> [UInt8] {
            Array(#"{"type":"a.b","payload":{"line":""#.utf8) + string + Array(#""}}"#.utf8)
        }
        for length in 1...27 {
            for position in 0..<length {
                var plain = Array(repeating: UInt8(ascii: "a"), count: length)
                plain[position] = UInt8(ascii: "~")
                let accepted = try EventBatch(ndjson: event(plain))
                #expect(accepted.payload(at: 0).map(Array.init) == Array(#"{"line":""#.utf8) + plain + Array(#""}"#.utf8))
                for bad: [UInt8] in [[0x01], [0x1F], [0x00], [0xFF], [0xC3], [0xED, 0xA0, 0x80], [UInt8(ascii: "\\"), UInt8(ascii: "x")]] {
                    var string = plain
                    string.replaceSubrange(position...position, with: bad)
                    #expect(rejection(bytes: event(string)) != nil, "\(bad) at \(position) of \(length)")
                }
                for good: [UInt8] in [Array("é".utf8), Array("😀".utf8), Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\u00e9"#.utf8), [0x7F], [0x20]] {
                    var string = plain
                    string.replaceSubrange(position...position, with: good)
                    #expect(rejection(bytes: event(string)) == nil, "\(good) at \(position) of \(length)")
                }
                // A bare quote ends the string early, and what follows is not JSON.
                var quoted = plain
                quoted[position] = UInt8(ascii: "\"")
                #expect(rejection(bytes: event(quoted)) != nil, "a quote at \(position) of \(length)")
            }
        }
    }

    @Test func parsesJSONObjectAndArray() throws {
        #expect(try EventBatch(json: Array(#"{"type":"a.b"}"#.utf8)).count == 1)
        #expect(try EventBatch(json: Array(#" [ {"type":"a.b"} , {"type":"c.d","event_id":"x1"} ] "#.utf8)).count == 2)
        #expect(try EventBatch(json: Array("[]".utf8)).isEmpty)
    }

    @Test func namesTheBadLine() {
        let body = "{\"type\":\"a.b\"}\n{\"type\":\"a.b\"}\n\n{\"type\":\"a.b\",}\n"
        #expect(rejection(body)?.line == 4)
        #expect(rejection(#"[{"type":"a.b"},{"type":"a.b"},{"nope":1}]"#, json: true)?.line == 3)
    }

    @Test(arguments: [
        ("{\"type\":\"a.b\"", "end of the event"),
        ("[1,2]", "expected an event object"),
        ("\"text\"", "expected an event object"),
        ("{\"payload\":{}}", "missing field 'type'"),
        ("{\"type\":\"Run.Started\"}", "dot-namespaced"),
        ("{\"type\":\"started\"}", "dot-namespaced"),
        ("{\"type\":\"run.\"}", "dot-namespaced"),
        ("{\"type\":\"run..x\"}", "dot-namespaced"),
        ("{\"type\":5}", "'type' must be a string"),
        ("{\"type\":\"a.b\",\"type\":\"a.b\"}", "duplicate field 'type'"),
        ("{\"type\":\"a.b\",\"sequence\":3}", "'sequence' is set by the server"),
        ("{\"type\":\"a.b\",\"created_at\":\"x\"}", "'created_at' is set by the server"),
        ("{\"type\":\"a.b\",\"extra\":1}", "unknown field 'extra'"),
        ("{\"type\":\"a.b\",\"event_id\":\"evt_123\"}", "reserved"),
        ("{\"type\":\"a.b\",\"event_id\":\"has space\"}", "may only contain"),
        ("{\"type\":\"a.b\",\"event_id\":\"\"}", "1-128"),
        ("{\"type\":\"a.b\",\"source\":3}", "'source' must be a string"),
        ("{\"type\":\"a.b\",\"payload\":tru}", "expected 'true'"),
        ("{\"type\":\"a.b\",\"payload\":01}", "expected ',' or '}'"),
        ("{\"type\":\"a.b\",\"payload\":\"\\x\"}", "valid escape"),
        ("{\"type\":\"a.b\",\"payload\":\"tab\there\"}", "control character"),
        ("{\"type\":\"a.b\"} {\"type\":\"a.b\"}", "unexpected data"),
    ])
    func refusesMalformedEvents(body: String, reason: String) {
        let result = rejection(body)
        #expect(result?.line == 1)
        #expect(result?.reason.contains(reason) == true, "reason was: \(result?.reason ?? "accepted")")
    }

    @Test func refusesInvalidUTF8() {
        let valid = Array(#"{"type":"a.b","payload":"x"}"#.utf8)
        let quote = valid.lastIndex(of: UInt8(ascii: "x"))!
        for bad: [UInt8] in [[0xC3, 0x28], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0xE2, 0x82]] {
            var body = valid
            body.replaceSubrange(quote...quote, with: bad)
            let result = rejection(bytes: body)
            #expect(result?.reason.contains("UTF-8") == true, "\(bad) gave \(String(describing: result))")
        }
    }

    @Test func acceptsMultiByteUTF8() throws {
        let text = "é ✓ 😀 中文"
        let batch = try EventBatch(ndjson: Array(#"{"type":"a.b","payload":"\#(text)","source":"naïve"}"#.utf8))
        #expect(batch.payload(at: 0).map { String(decoding: $0, as: UTF8.self) } == "\"\(text)\"")
    }

    @Test func refusesOversizedEvents() {
        var limits = EventBatch.Limits()
        limits.maxEventBytes = 100
        let big = #"{"type":"a.b","payload":"\#(String(repeating: "y", count: 200))"}"#
        do {
            _ = try EventBatch(ndjson: Array(("{\"type\":\"a.b\"}\n" + big).utf8), limits: limits)
            Issue.record("accepted an oversized event")
        } catch {
            guard case .invalidEvent(let rejection) = error else { Issue.record("\(error)"); return }
            #expect(rejection.line == 2)
            #expect(rejection.reason.contains("limit of 100"))
        }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 200) + String(repeating: "]", count: 200)
        #expect(rejection(#"{"type":"a.b","payload":\#(deep)}"#)?.reason.contains("nested deeper") == true)
    }

    @Test func refusesBodiesThatAreNotEvents() {
        for body in ["", "   ", "42", "nul"] {
            do {
                _ = try EventBatch(json: Array(body.utf8))
                Issue.record("accepted \(body)")
            } catch {
                guard case .invalidBody = error else { Issue.record("\(error)"); return }
            }
        }
    }

    @Test func eventTypeRule() {
        #expect(EventType.isValid("run.started"))
        #expect(EventType.isValid("token.created"))
        #expect(EventType.isValid("a1.b_c-d.e2"))
        #expect(!EventType.isValid("run"))
        #expect(!EventType.isValid("1run.started"))
        #expect(!EventType.isValid(".run"))
        #expect(!EventType.isValid(String(repeating: "a.", count: 70) + "b"))
    }
}

@Suite struct EncodingTests {
    @Test func timestampsAreRFC3339Milliseconds() {
        #expect(Timestamp(millisecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: 1_795_341_600_123).rfc3339 == "2026-11-22T10:00:00.123Z")
        #expect(Timestamp(millisecondsSinceEpoch: 951_782_400_000).rfc3339 == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
    }

    @Test func generatedIDsAreULIDsInOrder() {
        var generator = EventIdentifier.Generator()
        var ids: [String] = []
        for millisecond: UInt64 in [1_795_341_600_123, 1_795_341_600_123, 1_795_341_600_123, 1_795_341_600_124] {
            var bytes = [UInt8](repeating: 0, count: EventIdentifier.generatedLength)
            bytes.withUnsafeMutableBytes { generator.write(millisecond: millisecond, to: $0.baseAddress!) }
            ids.append(String(decoding: bytes, as: UTF8.self))
        }
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
        for id in ids {
            #expect(id.hasPrefix("evt_"))
            #expect(id.dropFirst(4).allSatisfy { alphabet.contains($0) })
            #expect(EventIdentifier.isGenerated(Array(id.utf8)))
        }
        #expect(ids[0].dropFirst(4).prefix(10) == "01M81B5HBV")  // 48-bit time of 2026-11-22T10:00:00.123Z, computed independently
    }

    @Test func marksPayloadsThatSpanLinesWhereverTheBreakFalls() throws {
        let body = "[{\"type\":\"a.b\",\"payload\":{\"a\":1}},{\"type\":\"a.b\",\"payload\":{\"a\":\n1}},{\"type\":\"a.b\",\"payload\":[1,\r2]},{\"type\":\"a.b\",\"payload\":{\"s\":\"x\"}\n}]"
        let batch = try EventBatch(json: Array(body.utf8))
        #expect(batch.events.map(\.payloadHasLineBreaks) == [false, true, true, false])
    }

    @Test func compactsPrettyPrintedPayloads() {
        let pretty = "{\n  \"a\" : [ 1,\n 2 ],\n \"s\": \"keep  these \\\" spaces\"\n}"
        var output = [UInt8](repeating: 0, count: pretty.utf8.count)
        let length = Array(pretty.utf8).withUnsafeBytes { input in
            output.withUnsafeMutableBytes { EventLineEncoder.compact(input, to: $0.baseAddress!) }
        }
        #expect(String(decoding: output[0..<length], as: UTF8.self) == #"{"a":[1,2],"s":"keep  these \" spaces"}"#)
    }
}

@Suite struct RawJSONTests {
    @Test func readsATopLevelStringMember() {
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"a":{"level":"no"},"level":"error","z":1}"#.utf8)) == "error")
        #expect(RawJSON.string(forKey: "level", in: Array(#" { "level" : "warn" } "#.utf8)) == "warn")
        // Nested members, other types, non-objects and broken JSON do not count.
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"a":{"level":"error"}}"#.utf8)) == nil)
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"level":3}"#.utf8)) == nil)
        #expect(RawJSON.string(forKey: "level", in: Array(#"["level","error"]"#.utf8)) == nil)
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"x":tru,"level":"error"}"#.utf8)) == nil)
        #expect(RawJSON.string(forKey: "level", in: Array(#""level""#.utf8)) == nil)
    }

    @Test func findsTheKeyWhereverItsBytesFirstAppear() {
        // The byte search that rules payloads out must not rule out any that hold the key.
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"a":"level","level":"error"}"#.utf8)) == "error")
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"a":"\"level\"","level":"error"}"#.utf8)) == "error")
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"levels":"error","xlevel":"error"}"#.utf8)) == nil)
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"line":"the level is \"level\"","n":1}"#.utf8)) == nil)
        #expect(RawJSON.string(forKey: "level", in: Array(#"{"level":"#.utf8)) == nil)
        #expect(RawJSON.string(forKey: "level", in: Array(#"""#.utf8)) == nil)
        #expect(RawJSON.string(forKey: "level", in: [UInt8]()) == nil)
        // A slice of a larger buffer, as the summary passes payloads.
        let line = Array(#"{"payload":{"level":"error"},"level":"info"}"#.utf8)
        #expect(RawJSON.string(forKey: "level", in: line[11..<28]) == "error")
    }
}

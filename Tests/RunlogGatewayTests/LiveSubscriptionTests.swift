import HTTPTypes
import NIOCore
import Testing

@testable import RunlogGateway
@testable import RunlogStorage

/// The hand-off rules between a parked reader and its run's feed, without sockets.
@Suite struct LiveSubscriptionTests {
    /// Stored lines `first...last`; `completedAt` gets type run.completed, the rest "step".
    func chunk(_ first: Int64, _ last: Int64, completedAt: Int64? = nil) -> EventChunk {
        var bytes = ByteBuffer()
        for sequence in first...last {
            let type = sequence == completedAt ? "run.completed" : (sequence.isMultiple(of: 2) ? "step.even" : "step.odd")
            bytes.writeString("{\"sequence\":\(sequence),\"type\":\"\(type)\",\"event_id\":\"e\(sequence)\",\"created_at\":\"t\",\"data\":{}}\n")
        }
        return EventChunk(bytes: bytes, firstSequence: first, lastSequence: last)
    }

    func ids(_ bytes: ByteBuffer?) -> [Int64] {
        let text = bytes.map { String(buffer: $0) } ?? ""
        return text.split(separator: "\n").compactMap { $0.hasPrefix("id: ") ? Int64($0.dropFirst(4)) : nil }
    }

    @Test func framesAreEncodedOnceWithEachEventsPlace() {
        let frames = LiveFrames([chunk(1, 3)], after: 1, format: .sse)
        #expect(frames.previous == 1)
        #expect(frames.last == 3)
        #expect(frames.events.map(\.sequence) == [2, 3])
        #expect(ids(frames.bytes) == [2, 3])
        let second = frames.bytes.getString(at: frames.bytes.readerIndex + frames.events[1].range.lowerBound, length: frames.events[1].range.count)
        #expect(second?.hasPrefix("id: 3\nevent: step.odd\ndata: {\"sequence\":3,") == true)
        #expect(second?.hasSuffix("}\n\n") == true)

        // What arrived since the last batch goes out as one, whatever its appends were.
        let coalesced = LiveFrames([chunk(1, 2), chunk(3, 3), chunk(4, 5)], after: 1, format: .sse)
        #expect(ids(coalesced.bytes) == [2, 3, 4, 5])
        #expect(coalesced.events.map(\.sequence) == [2, 3, 4, 5])

        let lines = LiveFrames([chunk(1, 2)], after: 0, format: .ndjson)
        #expect(String(buffer: lines.bytes).split(separator: "\n").count == 2)
    }

    @Test func aBatchIsAlsoOneHTTPChunkAndEachLoopGetsItsOwnCopy() {
        let frames = LiveFrames([chunk(1, 3)], after: 0, format: .sse)
        let size = frames.bytes.readableBytes
        #expect(String(buffer: frames.chunk) == String(size, radix: 16) + "\r\n" + String(buffer: frames.bytes) + "\r\n")

        let copy = frames.copied()
        #expect(copy.chunk == frames.chunk && copy.bytes == frames.bytes)
        #expect(copy.events.map(\.sequence) == frames.events.map(\.sequence) && copy.previous == frames.previous)
        let storages = [frames.chunk, copy.chunk].map { $0.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) } }
        #expect(storages[0] != storages[1])
    }

    /// Only responses that NIO's encoder sends as chunks get the batch's ready-made chunk.
    @Test func onlyAGetsChunkedOKTakesReadyMadeChunks() {
        let stream = HTTPResponse(status: .ok, headerFields: [.contentType: "text/event-stream"])
        #expect(LiveSender.isChunked(stream, answeringGet: true))
        #expect(!LiveSender.isChunked(stream, answeringGet: false))
        #expect(!LiveSender.isChunked(HTTPResponse(status: .ok, headerFields: [.contentLength: "10"]), answeringGet: true))
        #expect(!LiveSender.isChunked(HTTPResponse(status: .ok, headerFields: [.transferEncoding: "gzip"]), answeringGet: true))
        #expect(!LiveSender.isChunked(HTTPResponse(status: .noContent), answeringGet: true))
    }

    @Test func aReaderWritesEachEventOnceAndSharesTheBatchBytes() {
        var reader = LiveSubscription(position: 4, types: nil)
        // The reader joined past the feed: what it has is skipped, the rest is a slice.
        let step = reader.take(LiveFrames([chunk(3, 6)], after: 2, format: .sse), writable: true)
        #expect(ids(step.bytes) == [5, 6])
        #expect(step.staysLive)
        #expect(reader.position == 6)

        let whole = LiveFrames([chunk(7, 8)], after: 6, format: .sse)
        let next = reader.take(whole, writable: true)
        #expect(next.bytes == whole.bytes)
        let again = reader.take(whole, writable: true)
        #expect(again.bytes == nil && again.staysLive)
        #expect(reader.position == 8)
    }

    @Test func aGapOrAFullConnectionHandsTheStreamBack() {
        var behind = LiveSubscription(position: 2, types: nil)
        let gap = behind.take(LiveFrames([chunk(5, 6)], after: 4, format: .sse), writable: true)
        #expect(gap.bytes == nil && !gap.staysLive && !gap.fellBehind)
        #expect(behind.position == 2)

        var slow = LiveSubscription(position: 4, types: nil)
        let full = slow.take(LiveFrames([chunk(5, 6)], after: 4, format: .sse), writable: false)
        #expect(full.bytes == nil && !full.staysLive && full.fellBehind)
        // Nothing was taken: the task reads on from 4.
        #expect(slow.position == 4)
    }

    @Test func typeFiltersPassOverEventsAndCompletionEndsTheFeed() throws {
        var reader = LiveSubscription(position: 0, types: try TypeFilter("step.even,run.*"))
        let step = reader.take(LiveFrames([chunk(1, 4)], after: 0, format: .sse), writable: true)
        #expect(ids(step.bytes) == [2, 4])
        #expect(reader.position == 4)

        let odd = reader.take(LiveFrames([chunk(5, 5)], after: 4, format: .sse), writable: true)
        #expect(odd.bytes == nil && odd.staysLive)
        #expect(reader.position == 5)

        let end = reader.take(LiveFrames([chunk(6, 7, completedAt: 7)], after: 5, format: .sse), writable: true)
        #expect(ids(end.bytes) == [6, 7])
        #expect(!end.staysLive)
        #expect(reader.sawCompletion)
    }
}

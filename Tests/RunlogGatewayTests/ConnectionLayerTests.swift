import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
@testable import RunlogGateway
import RunlogTestSupport
import ServiceLifecycle
import Testing

/// What the copy of Hummingbird's request loop (`Sources/RunlogGateway/Connection`) relies on,
/// run against Hummingbird's own `HTTP1Channel` and against the gateway's connection layer:
/// both must answer exactly as written here. When Hummingbird changes how it serves a
/// connection, the first case fails, and the copy needs the same change.
@Suite(.timeLimit(.minutes(1))) struct ConnectionLayerTests {
    enum Layer: String, CaseIterable, Sendable {
        case hummingbird
        case gateway

        func server(logger: Logger) -> HTTPServerBuilder {
            switch self {
            case .hummingbird: return .http1()
            case .gateway: return ConnectionLayer.http1(logger: logger, metrics: GatewayMetrics())
            }
        }
    }

    /// A handler the test holds open: it says when it has started, and answers once let go.
    final class Gate: Sendable {
        let started = AsyncStream<Void>.makeStream()
        let release = AsyncStream<Void>.makeStream()
    }

    /// Serves a small router on `layer`, runs `body` with the port and a way to start a
    /// graceful shutdown, and waits for the server to end.
    func withServer(_ layer: Layer, gate: Gate = Gate(), _ body: @Sendable (Int, @Sendable () async -> Void) async throws -> Void) async throws {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let router = Router(context: GatewayRequestContext.self)
        router.get("hello") { _, _ in "hello" }
        router.post("echo") { request, _ in
            Response(status: .ok, body: .init(byteBuffer: try await request.body.collect(upTo: 1 << 16)))
        }
        router.get("held") { _, _ in
            gate.started.continuation.yield()
            for await _ in gate.release.stream { break }
            return "released"
        }
        let (port, portContinuation) = AsyncStream<Int>.makeStream()
        let application = Application(
            router: router, server: layer.server(logger: logger), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portContinuation.yield(channel.localAddress?.port ?? 0)
                portContinuation.finish()
            },
            logger: logger
        )
        let group = ServiceGroup(configuration: .init(services: [application], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var ports = port.makeAsyncIterator()
            let bound = try #require(await ports.next())
            try await body(bound) { await group.triggerGracefulShutdown() }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    /// The responses in `bytes`, each as "<status> <body>" (bodies framed by Content-Length),
    /// and how many bytes they took.
    static func responses(_ bytes: [UInt8]) -> (responses: [String], length: Int) {
        var text = Substring(String(decoding: bytes, as: UTF8.self))
        var responses: [String] = []
        var length = 0
        while let headEnd = text.range(of: "\r\n\r\n") {
            let head = text[..<headEnd.lowerBound]
            let status = head.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
            let bodyLength = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            let rest = text[headEnd.upperBound...]
            guard rest.utf8.count >= bodyLength else { break }
            let body = rest.prefix(bodyLength)
            responses.append("\(status) \(body)")
            length += head.utf8.count + 4 + bodyLength
            text = rest.dropFirst(bodyLength)
        }
        return (responses, length)
    }

    /// Sends `requests` in one write and reads `count` whole responses, off Swift's thread pool
    /// (which the server's handlers need meanwhile).
    static func exchange(_ connection: RawConnection, _ requests: String, count: Int) async throws -> [String] {
        try await offPool {
            try connection.send(requests)
            var received: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while responses(received).responses.count < count {
                let read = buffer.withUnsafeMutableBytes { recv(connection.descriptor, $0.baseAddress, $0.count, 0) }
                guard read > 0 else { break }
                received.append(contentsOf: buffer[0..<read])
            }
            return responses(received).responses
        }
    }

    /// Reads until the server closes the connection: true if it did, with nothing more sent.
    static func closesWithNothingMore(_ connection: RawConnection) async throws -> Bool {
        let (rest, closed) = try await offPool { connection.readToEnd() }
        return closed && rest.isEmpty
    }

    @Test(arguments: Layer.allCases) func aKeptAliveConnectionAnswersRequestsInTurn(_ layer: Layer) async throws {
        try await withServer(layer) { port, _ in
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            for _ in 0..<3 {
                #expect(try await Self.exchange(connection, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", count: 1) == ["200 hello"])
            }
            let last = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
            #expect(try await Self.exchange(connection, last, count: 1) == ["200 abc"])
            #expect(try await Self.closesWithNothingMore(connection), "Connection: close ends it")
        }
    }

    @Test(arguments: Layer.allCases) func pipelinedRequestsAreAnsweredInOrder(_ layer: Layer) async throws {
        try await withServer(layer) { port, _ in
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            // Sent in one write, before any answer. No handler reads the third body: the loop skips it.
            let requests =
                "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n" + "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
                + "POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nskip" + "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            // An unknown method on a known path answers 404 here (the gateway's own 405 is a middleware's).
            #expect(try await Self.exchange(connection, requests, count: 4) == ["200 hello", "200 first", "404 ", "200 hello"])
            #expect(try await Self.closesWithNothingMore(connection))
        }
    }

    @Test(arguments: Layer.allCases) func aGracefulShutdownClosesIdleConnectionsAndFinishesAnsweringTheBusyOnes(_ layer: Layer) async throws {
        let gate = Gate()
        try await withServer(layer, gate: gate) { port, shutDown in
            let idle = try RawConnection(port: port)
            defer { idle.close() }
            #expect(try await Self.exchange(idle, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", count: 1) == ["200 hello"])
            let busy = try RawConnection(port: port)
            defer { busy.close() }
            try busy.send("GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
            var started = gate.started.stream.makeAsyncIterator()
            _ = await started.next()

            await shutDown()
            #expect(try await Self.closesWithNothingMore(idle), "an idle kept-alive connection is closed at once")
            gate.release.continuation.yield()
            #expect(try await Self.exchange(busy, "", count: 1) == ["200 released"])
            #expect(try await Self.closesWithNothingMore(busy), "a busy one is closed after its answer")
        }
    }
}

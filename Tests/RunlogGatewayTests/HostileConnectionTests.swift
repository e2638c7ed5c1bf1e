import Foundation
import HTTPTypes
import HummingbirdTesting
@testable import RunlogGateway
import RunlogTestSupport
import Synchronization
import Testing

/// Connections that hold the server up on purpose.
@Suite(.timeLimit(.minutes(1))) struct HostileConnectionTests {
    @Test func connectionsTricklingARequestHeadAreClosedWhileOthersAreServedAndNoDescriptorLeaks() async throws {
        try await withGateway({ $0.requestTimeout = .seconds(1) }) { client, base, _ in
            let port = try #require(base.split(separator: ":").last.flatMap { Int($0) })
            let before = try openDescriptors()
            // 200 slowloris connections: each starts a head and adds a header line every 100 ms,
            // so the connection is never silent and the head never ends.
            let connections = try await offPool { try (0..<200).map { _ in try RawConnection(port: port, receiveTimeout: 20) } }
            for connection in connections { try connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n") }
            let trickler = Task.detached {
                var open = connections
                while !open.isEmpty && !Task.isCancelled {
                    open = open.filter { connection in (try? connection.send("X-Slow: 1\r\n")) != nil }
                    try await Task.sleep(for: .milliseconds(100))
                }
            }
            defer { trickler.cancel() }

            // Meanwhile a normal request is served.
            #expect(try await client.execute(uri: "/healthz", method: .get).status == .ok)
            // Each of them is closed by the server, without a response to a head that never ended.
            let endings = try await offPool { connections.map { $0.readToEnd() } }
            let stillOpen = endings.filter { !$0.closed }.count
            let answered = endings.filter { !$0.bytes.isEmpty }.count
            #expect(stillOpen == 0)
            #expect(answered == 0)
            for connection in connections { connection.close() }
            // Their server-side sockets are gone too.
            try await waitUntil("the server's descriptors to return to \(before)") { try openDescriptors() <= before }
            // (On a fresh connection: the test client's own has been idle past the timeout.)
            #expect(try await offPool { try RawConnection.request(port: port, "GET", "/healthz") }.status == 200)
        }
    }

    @Test func anIdleKeepAliveConnectionIsClosedAfterTheRequestTimeout() async throws {
        try await withGateway({ $0.requestTimeout = .seconds(1) }) { _, base, _ in
            let port = try #require(base.split(separator: ":").last.flatMap { Int($0) })
            let ending = try await offPool {
                let connection = try RawConnection(port: port, receiveTimeout: 20)
                defer { connection.close() }
                try connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                return connection.readToEnd()
            }
            // Answered, then closed by the server once nothing more came.
            #expect(ending.closed)
            #expect(String(decoding: ending.bytes, as: UTF8.self).hasPrefix("HTTP/1.1 200 "))
        }
    }

    /// Descriptors this process holds (the server is in it).
    private func openDescriptors() throws -> Int {
        try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
    }
}

import Foundation
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Slowloris: connections that trickle a request head and never finish it.
extension GatewayBenchmark {
    /// Latency of a normal request (`GET /healthz`, each on a fresh connection) alone, then
    /// while `slowConnections` connections each add a header line every 100 ms; and the
    /// server's descriptors before, during, and after `--request-timeout` has closed them.
    func slowloris(group: any EventLoopGroup) async throws {
        let slowConnections = 200
        let requests = quick ? 50 : 500
        // A short timeout of its own, so that the closing is seen within the run.
        let server = try await ServedProcess.runlog(storage: directory + "/slowloris", arguments: ["--request-timeout", "5s"])
        defer { server.stop() }
        let request = LoadRequest.get("/healthz", accept: "application/json")
        func latencies() async throws -> [Double] {
            var values: [Double] = []
            for _ in 0..<requests {
                let started = ContinuousClock.now
                try await LoadConnection.connect(port: server.port, group: group).send(request)
                values.append((ContinuousClock.now - started).seconds * 1000)
            }
            return values.sorted()
        }
        let descriptorsBefore = server.openDescriptors
        let alone = try await latencies()

        let sockets = try (0..<slowConnections).map { _ in try Self.openTrickle(port: server.port) }
        let trickling = Task.detached { [sockets] in
            var open = sockets
            while !open.isEmpty && !Task.isCancelled {
                open = open.filter { Self.send("X-Slow: 1\r\n", on: $0) }
                try await Task.sleep(for: .milliseconds(100))
            }
            return open.count
        }
        let besideThem = try await latencies()
        let descriptorsDuring = server.openDescriptors
        // They are closed by the server once the timeout passes.
        let closedAt = ContinuousClock.now
        let stillOpen = try await trickling.value
        let closingTook = (ContinuousClock.now - closedAt).seconds
        for socket in sockets { close(socket) }
        var descriptorsAfter = server.openDescriptors
        for _ in 0..<50 where descriptorsAfter > descriptorsBefore {
            try await Task.sleep(for: .milliseconds(100))
            descriptorsAfter = server.openDescriptors
        }

        print("\n## Slowloris: \(slowConnections) connections trickling a request head (--request-timeout 5s)\n")
        print("| GET /healthz, fresh connection each | requests | median ms | p99 ms |")
        print("|---|---:|---:|---:|")
        print("| alone | \(requests) | \(String(format: "%.3f", alone[requests / 2])) | \(String(format: "%.3f", alone[requests * 99 / 100])) |")
        print("| beside \(slowConnections) trickling connections | \(requests) | \(String(format: "%.3f", besideThem[requests / 2])) | \(String(format: "%.3f", besideThem[requests * 99 / 100])) |")
        print("\nmedian beside / alone: \(ratio(besideThem[requests / 2], alone[requests / 2]))")
        print("server descriptors: \(descriptorsBefore) before, \(descriptorsDuring) during, \(descriptorsAfter) after; trickling connections still open at the end: \(stillOpen) (all closed within \(String(format: "%.1f", closingTook)) s of the measurement)")
    }

    private static func openTrickle(port: Int) throws -> Int32 {
        guard let descriptor = ServedProcess.connectToLoopback(port: port), send("GET /healthz HTTP/1.1\r\nHost: bench\r\n", on: descriptor) else {
            throw LoadConnection.Failure(description: "could not open a trickling connection: errno \(errno)")
        }
        return descriptor
    }

    /// Sends `text`; false once the server has closed the connection.
    private static func send(_ text: String, on descriptor: Int32) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }
}

extension ServedProcess {
    /// Descriptors the server holds now.
    var openDescriptors: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(process.processIdentifier)/fd").count) ?? -1
    }
}

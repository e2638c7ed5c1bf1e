import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One blocking TCP connection to a local server, with bare HTTP/1.1 on it: thousands of
/// these cost the test a descriptor each and nothing else, unlike an HTTP client's pools.
package struct RawConnection: Sendable {
    package let descriptor: Int32

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package init(port: Int, receiveTimeout seconds: Int = 30) throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let message = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw Failure(description: "connect: \(message)")
        }
        self.descriptor = descriptor
    }

    package func send(_ text: String) throws {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
            bytes = bytes.dropFirst(written)
        }
    }

    /// Sends a GET for an SSE stream.
    package func requestStream(_ path: String) throws {
        try send("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    }

    /// Reads until `text` has arrived (true) or the connection ends or times out (false).
    package func read(until text: String, into received: inout [UInt8]) -> Bool {
        let needle = Array(text.utf8)
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            if received.count >= needle.count, Self.contains(received, needle) { return true }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return false }
            received.append(contentsOf: buffer[0..<count])
        }
    }

    private static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where haystack[start] == needle[0] {
            if haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
        }
        return false
    }

    /// One request on a fresh connection (closed after): the status and body.
    package static func request(port: Int, _ method: String, _ path: String, body: String = "", contentType: String = "application/json") throws -> (status: Int, body: String) {
        let connection = try RawConnection(port: port)
        defer { connection.close() }
        try connection.send("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
        let received = connection.readToEnd().bytes
        let text = String(decoding: received, as: UTF8.self)
        guard let status = text.firstMatch(of: /^HTTP\/1\.1 (\d{3})/).flatMap({ Int($0.1) }) else {
            throw Failure(description: "no HTTP response: \(text.prefix(200))")
        }
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (status, body)
    }

    /// Reads until the server closes the connection (or the receive timeout passes): what
    /// arrived, and whether the connection was closed rather than timed out. A reset counts
    /// as closed: a server that closes with unread bytes from the client sends one.
    package func readToEnd() -> (bytes: [UInt8], closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 || (count < 0 && errno == ECONNRESET) { return (received, true) }
            guard count > 0 else { return (received, false) }
            received.append(contentsOf: buffer[0..<count])
        }
    }

    package func close() {
        _ = Glibc.close(descriptor)
    }
}

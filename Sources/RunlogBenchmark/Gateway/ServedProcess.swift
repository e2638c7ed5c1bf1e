import Foundation
import NIOCore
import NIOPosix

/// A server the gateway benchmark drives: `runlog serve` (release build, next to this
/// executable), a ``BaselineServer`` or nginx, as a child process on a loopback port.
final class ServedProcess {
    let process: Process
    let port: Int
    let name: String

    private init(process: Process, port: Int, name: String) {
        self.process = process
        self.port = port
        self.name = name
    }

    /// A port nothing listens on now.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address -> Int32 in
                guard bind(descriptor, address, length) == 0 else { return -1 }
                return getsockname(descriptor, address, &length)
            }
        }
        guard bound == 0 else { throw LoadConnection.Failure(description: "no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// This benchmark's own executable; release builds put `runlog` beside it.
    private static let benchmarkExecutable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()

    static func runlog(storage: String, arguments: [String]) async throws -> ServedProcess {
        let executable = benchmarkExecutable.deletingLastPathComponent().appendingPathComponent("runlog").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw LoadConnection.Failure(description: "\(executable) is missing: build everything with `swift build -c release`")
        }
        let port = try freePort()
        // One JSON log line per request, as in production; written away, not kept.
        return try await start(executable, ["serve", "--port", String(port), "--storage", storage] + arguments, port: port, name: "runlog")
    }

    /// ``BaselineServer`` of `kind` (this executable's hidden subcommand).
    static func baseline(_ kind: BaselineServer.Kind) async throws -> ServedProcess {
        let port = try freePort()
        return try await start(benchmarkExecutable.path, ["baseline-server", "--kind", kind.rawValue, "--port", String(port)], port: port, name: "baseline \(kind.rawValue)")
    }

    /// nginx from Debian serving `root` with sendfile, or nil when it is not installed.
    static func nginx(root: String, scratch: String, placement: CorePlacement? = nil) async throws -> ServedProcess? {
        guard let executable = ["/usr/sbin/nginx", "/usr/bin/nginx"].first(where: FileManager.default.isExecutableFile(atPath:)) else { return nil }
        let port = try freePort()
        let configuration = """
            daemon off;
            worker_processes 1;
            pid \(scratch)/nginx.pid;
            error_log \(scratch)/nginx-error.log;
            events { worker_connections 1024; }
            http {
                access_log off;
                sendfile on;
                tcp_nopush on;
                client_body_temp_path \(scratch);
                proxy_temp_path \(scratch);
                fastcgi_temp_path \(scratch);
                uwsgi_temp_path \(scratch);
                scgi_temp_path \(scratch);
                server {
                    listen 127.0.0.1:\(port);
                    root \(root);
                    default_type application/x-ndjson;
                }
            }
            """
        try configuration.write(toFile: scratch + "/nginx.conf", atomically: true, encoding: .utf8)
        let arguments = ["-c", scratch + "/nginx.conf", "-e", scratch + "/nginx-error.log"]
        // Pinned from the start, so that its worker is too.
        let (command, commandArguments) = placement?.serverCommand(executable, arguments) ?? (executable, arguments)
        return try await start(command, commandArguments, port: port, name: "nginx")
    }

    /// Starts `executable` with its output discarded, and returns once it listens on `port`.
    private static func start(_ executable: String, _ arguments: [String], port: Int, name: String) async throws -> ServedProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let served = ServedProcess(process: process, port: port, name: name)
        try await served.waitUntilListening()
        return served
    }

    private func waitUntilListening() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else { throw LoadConnection.Failure(description: "\(name) exited at start-up") }
            if let descriptor = Self.connectToLoopback(port: port) {
                close(descriptor)
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw LoadConnection.Failure(description: "\(name) did not start listening")
    }

    /// A blocking TCP connection to `port` on 127.0.0.1, or nil when nothing accepts it.
    static func connectToLoopback(port: Int) -> Int32? {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            return nil
        }
        return descriptor
    }

    /// Resident memory in bytes.
    var residentBytes: Int {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? "") ?? 0) * 1024
        }
        return 0
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
    }
}

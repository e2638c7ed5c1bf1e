import Foundation

/// Puts the load generator and the server under test on cores of their own for a measurement.
///
/// On a 2-core machine the scheduler sometimes runs a server on the load generator's core and
/// sometimes not, which moved single downloads by up to 3× between back-to-back repetitions;
/// a comparison of two servers is only fair when both get the same placement.
struct CorePlacement {
    let clientCores: String
    let serverCores: String
    private let allCores: String

    /// The load generator on core 0 and servers on the others; nil with fewer than 2 cores or
    /// without `taskset` (util-linux).
    static func forThisMachine() -> CorePlacement? {
        let cores = sysconf(Int32(_SC_NPROCESSORS_ONLN))
        guard cores >= 2, FileManager.default.isExecutableFile(atPath: taskset) else { return nil }
        return CorePlacement(clientCores: "0", serverCores: cores == 2 ? "1" : "1-\(cores - 1)", allCores: "0-\(cores - 1)")
    }

    static let taskset = "/usr/bin/taskset"

    /// Pins this process and every thread of `server` (with what they start later).
    func place(server: pid_t) throws {
        try Self.pin(getpid(), to: clientCores)
        try Self.pin(server, to: serverCores)
    }

    /// Lets both run anywhere again.
    func release(server: pid_t) throws {
        try Self.pin(getpid(), to: allCores)
        try Self.pin(server, to: allCores)
    }

    /// `arguments` to run `executable` pinned to the server cores.
    func serverCommand(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        (Self.taskset, ["-c", serverCores, executable] + arguments)
    }

    private static func pin(_ pid: pid_t, to cores: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: taskset)
        process.arguments = ["-a", "-c", "-p", cores, String(pid)]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw LoadConnection.Failure(description: "taskset could not pin process \(pid) to cores \(cores)")
        }
    }
}

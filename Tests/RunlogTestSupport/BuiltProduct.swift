import Foundation

/// The path of an executable this package builds (`runlog`, `RunlogCrashHelper`), beside the
/// test bundle in the build directory: tests run the real binaries as child processes.
package func builtProduct(_ name: String) -> String {
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent(name).path
}

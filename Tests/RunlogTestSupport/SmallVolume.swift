package import Foundation
import Testing

/// A small tmpfs mounted on a fresh directory: a volume a test can really fill, so that writes
/// fail with `ENOSPC` the way they do on a full disk. Needs root (CI runs as root); a machine
/// that cannot mount fails the test with the reason rather than skipping it.
package final class SmallVolume: Sendable {
    package let path: String
    private let directory: TemporaryDirectory

    /// Mounts a tmpfs of `bytes` (rounded up to pages by the kernel).
    package init(bytes: Int) async throws {
        directory = TemporaryDirectory()
        path = directory.path
        let mounted = try await ChildProcess.run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(bytes),mode=0755", "tmpfs", path])
        guard mounted.status == 0 else {
            directory.remove()
            throw SmallVolumeError(reason: "mounting a tmpfs needs root: \(mounted.error)")
        }
    }

    /// Fills the volume with a file (`filler` under the mount) until a write fails for want of
    /// space; returns the bytes written.
    @discardableResult
    package func fill() throws -> Int {
        let descriptor = open(fillerPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        guard descriptor >= 0 else { throw SmallVolumeError(reason: "open \(fillerPath): errno \(errno)") }
        defer { close(descriptor) }
        let chunk = [UInt8](repeating: 0, count: 4096)
        var written = 0
        while true {
            let result = chunk.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if result > 0 {
                written += result
            } else if errno == ENOSPC {
                return written
            } else if errno != EINTR {
                throw SmallVolumeError(reason: "write \(fillerPath): errno \(errno)")
            }
        }
    }

    /// Frees what ``fill()`` took.
    package func free() throws {
        try FileManager.default.removeItem(atPath: fillerPath)
    }

    private var fillerPath: String { path + "/filler" }

    /// Unmounts and removes the mount point.
    package func remove() async {
        do {
            let result = try await ChildProcess.run("/usr/bin/umount", ["-l", path])
            if result.status != 0 { Issue.record("could not unmount \(path): \(result.error)") }
        } catch {
            Issue.record("could not unmount \(path): \(error)")
        }
        directory.remove()
    }
}

package struct SmallVolumeError: Error, CustomStringConvertible {
    package var reason: String
    package var description: String { reason }
}

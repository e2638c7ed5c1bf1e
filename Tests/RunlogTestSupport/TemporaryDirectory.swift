import Foundation
import Testing

/// A fresh directory under the system temp dir, removed by `remove()`.
package struct TemporaryDirectory: Sendable {
    package let path: String

    package init() {
        var template = Array((NSTemporaryDirectory() + "runlog-test-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(created != nil, "mkdtemp failed")
        path = String(cString: template.withUnsafeBufferPointer { $0.baseAddress! })
    }

    package func remove() {
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            Issue.record("could not remove \(path): \(error)")
        }
    }

    /// Removes a directory that exited processes' children may still be writing to (a browser
    /// profile): retries for up to five seconds, then records the failure.
    package func removeEventually() {
        for _ in 0..<50 {
            do {
                try FileManager.default.removeItem(atPath: path)
                return
            } catch {
                usleep(100_000)
            }
        }
        remove()
    }
}

import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Checks a run's log files without changing them (unlike opening it through a store, which
/// repairs a torn tail): every line whole and valid, sequences contiguous from 1.
package enum LogInspector {
    package struct Report: Sendable, Equatable {
        /// Whether the run's `logs/` directory exists.
        package var exists: Bool
        package var eventCount: Int64 = 0
        package var lastSequence: Int64 = 0
        package var storedBytes: Int64 = 0
        package var lastEventType: String?
        /// What is wrong, one sentence each; empty when the log is sound.
        package var problems: [String] = []
    }

    /// Reads every segment of the run's log under `root`. Blocking.
    package static func inspect(root: String, key: RunKey) -> Report {
        let directory = EventStoreConfiguration(root: root).logDirectory(for: key)
        let names: [String]?
        do {
            names = try FileSystem.contentsOfDirectory(directory)
        } catch {
            return Report(exists: true, problems: ["cannot list \(directory): \(error)"])
        }
        guard let names else { return Report(exists: false) }
        var report = Report(exists: true)
        var closed: [ClosedSegment] = []
        var activeLength: Int64?
        for name in names.sorted() {
            switch SegmentName(name) {
            case .active:
                activeLength = (try? FileSystem.size(of: directory + "/" + name)) ?? 0
            case .closed(let segment):
                if let index = closed.firstIndex(where: { $0.firstSequence == segment.firstSequence && $0.lastSequence == segment.lastSequence }) {
                    report.problems.append("segment \(segment.plainFileName) is there both plain and gzipped")
                    closed[index].isCompressed = true
                } else {
                    closed.append(segment)
                }
            case .temporary:
                report.problems.append("leftover temporary file \(name)")
            case .unknown:
                report.problems.append("unexpected file \(name)")
            }
        }
        closed.sort()
        var expectedFirst: Int64 = 1
        for segment in closed {
            if segment.firstSequence != expectedFirst {
                report.problems.append("segment \(segment.fileName) starts at \(segment.firstSequence), expected \(expectedFirst)")
            }
            expectedFirst = segment.lastSequence + 1
        }
        // Read everything, whole lines only, checking each.
        var active: LogSnapshot.ActiveSegment?
        if let activeLength, activeLength > 0,
            let file = try? PosixFile(path: directory + "/" + SegmentName.activeFileName, flags: O_RDONLY),
            let inode = try? file.status().inode
        {
            active = .init(firstSequence: expectedFirst, readableLength: activeLength, inode: inode)
        }
        let snapshot = LogSnapshot(key: key, directory: directory, closedSegments: closed, active: active, lastSequence: .max)
        let cursor = LogCursor(snapshot: snapshot, after: 0)
        var expected: Int64 = 1
        do {
            loop: while true {
                switch try cursor.next() {
                case .chunk(let chunk):
                    var failure: String?
                    chunk.forEachLine { sequence, line in
                        guard failure == nil else { return }
                        let valid = line.withUnsafeReadableBytes { StoredLine.isValid($0) }
                        if !valid {
                            failure = "the line after sequence \(expected - 1) is not a valid event"
                            return
                        }
                        if sequence != expected {
                            failure = "sequence \(sequence) follows \(expected - 1)"
                            return
                        }
                        expected += 1
                        report.eventCount += 1
                        report.storedBytes += Int64(line.readableBytes + 1)
                        report.lastSequence = sequence
                        report.lastEventType = line.withUnsafeReadableBytes { bytes in
                            StoredLine.type(of: bytes).map { String(decoding: bytes[$0], as: UTF8.self) }
                        }
                    }
                    if let failure {
                        report.problems.append(failure)
                        break loop
                    }
                case .end, .stale:
                    break loop
                }
            }
        } catch {
            report.problems.append("\(error)")
        }
        return report
    }
}

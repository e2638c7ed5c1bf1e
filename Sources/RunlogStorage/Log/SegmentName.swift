/// Names of the files in a run's `logs/` directory.
///
/// - `events.ndjson`: the active segment, the only one ever written.
/// - `events-<first>-<last>.ndjson`: a closed segment; both sequences zero-padded to 19 digits,
///   so names sort in log order and tell their range without being opened.
/// - `events-<first>-<last>.ndjson.gz`: the same segment after archiving.
/// - `.<name>.<pid>.<random>.tmp`: a file being written (archiving); never read.
enum SegmentName: Equatable, Sendable {
    case active
    case closed(ClosedSegment)
    case temporary
    case unknown

    static let activeFileName = "events.ndjson"

    init(_ name: String) {
        if name == Self.activeFileName {
            self = .active
        } else if name.hasPrefix("."), name.hasSuffix(".tmp") {
            self = .temporary
        } else if let segment = ClosedSegment(fileName: name) {
            self = .closed(segment)
        } else {
            self = .unknown
        }
    }
}

/// A closed segment: its sequence range, and whether it is stored gzipped.
public struct ClosedSegment: Equatable, Sendable, Comparable {
    public var firstSequence: Int64
    public var lastSequence: Int64
    public var isCompressed: Bool

    public init(firstSequence: Int64, lastSequence: Int64, isCompressed: Bool) {
        self.firstSequence = firstSequence
        self.lastSequence = lastSequence
        self.isCompressed = isCompressed
    }

    /// `events-<first>-<last>.ndjson`.
    public var plainFileName: String {
        "events-\(Self.padded(firstSequence))-\(Self.padded(lastSequence)).ndjson"
    }

    /// `events-<first>-<last>.ndjson.gz`.
    public var compressedFileName: String { plainFileName + ".gz" }

    /// The name the segment has on disk now.
    public var fileName: String { isCompressed ? compressedFileName : plainFileName }

    init?(fileName name: String) {
        var stem = Substring(name)
        let compressed = stem.hasSuffix(".gz")
        if compressed { stem = stem.dropLast(3) }
        guard stem.hasPrefix("events-"), stem.hasSuffix(".ndjson") else { return nil }
        let range = stem.dropFirst(7).dropLast(7).split(separator: "-", omittingEmptySubsequences: false)
        guard range.count == 2, let first = Int64(range[0]), let last = Int64(range[1]), first >= 1, last >= first else {
            return nil
        }
        self.init(firstSequence: first, lastSequence: last, isCompressed: compressed)
    }

    public static func < (lhs: ClosedSegment, rhs: ClosedSegment) -> Bool {
        lhs.firstSequence < rhs.firstSequence
    }

    private static func padded(_ value: Int64) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, 19 - digits.count)) + digits
    }
}

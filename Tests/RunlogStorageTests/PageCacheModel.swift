import Foundation
import Synchronization

@testable import RunlogStorage

/// A page cache between the engine and its disk, as a power cut sees it.
///
/// It watches every change the engine makes under one root (a ``FileTap``) and keeps two
/// states per file and directory: the cached one (what the running process reads; the real
/// files hold it) and the durable one. A file's data becomes durable with `fsync`/`fdatasync`;
/// a directory's entries (created, renamed, removed names) only with an `fsync` of that
/// directory. Before every change it keeps a snapshot: each is a crash point, and
/// ``writeCrashImage(at:into:seed:)`` writes what a disk could hold after a power cut there.
final class PageCacheModel: FileTap {
    struct Node {
        var isDirectory: Bool
        var cached: [UInt8] = []
        var durable: [UInt8] = []
        var entries: [String: Int] = [:]
        var durableEntries: [String: Int] = [:]
    }

    private struct State {
        var nodes: [Int: Node] = [PageCacheModel.rootID: Node(isDirectory: true)]
        var nextID = 1
        /// Snapshots before each change: index k holds the state after changes 0..<k.
        var snapshots: [[Int: Node]] = []
        /// What each change was, for failure messages.
        var changes: [String] = []
    }

    static let rootID = 0
    static let pageSize = 4096
    /// Tokens of opened files the model does not know (nothing to track).
    static let untracked = -1

    let root: String
    private let state = Mutex(State())

    init(root: String) {
        self.root = root
    }

    /// Changes seen so far: the crash points are 0...changeCount.
    var changeCount: Int { state.withLock { $0.snapshots.count } }

    // MARK: FileTap

    func opened(_ path: String, created: Bool, truncated: Bool) -> Int {
        state.withLock { state in
            if let id = Self.lookup(path, root: root, in: state.nodes) {
                if truncated, !state.nodes[id]!.cached.isEmpty {
                    Self.snapshot(&state, "truncate \(path) to 0")
                    state.nodes[id]!.cached = []
                }
                return id
            }
            guard created, let (parent, name) = Self.parent(of: path, root: root, in: state.nodes) else { return Self.untracked }
            Self.snapshot(&state, "create \(path)")
            let id = state.nextID
            state.nextID += 1
            state.nodes[id] = Node(isDirectory: false)
            state.nodes[parent]!.entries[name] = id
            return id
        }
    }

    func wrote(_ token: Int, _ bytes: UnsafeRawBufferPointer) {
        guard token != Self.untracked else { return }
        state.withLock { state in
            Self.snapshot(&state, "write \(bytes.count) bytes to #\(token)")
            state.nodes[token]!.cached.append(contentsOf: bytes)
        }
    }

    func truncated(_ token: Int, to length: Int64) {
        guard token != Self.untracked else { return }
        state.withLock { state in
            Self.snapshot(&state, "truncate #\(token) to \(length)")
            let count = Int(length)
            var cached = state.nodes[token]!.cached
            if cached.count > count { cached.removeLast(cached.count - count) } else { cached += [UInt8](repeating: 0, count: count - cached.count) }
            state.nodes[token]!.cached = cached
        }
    }

    func synchronized(_ token: Int) {
        guard token != Self.untracked else { return }
        state.withLock { state in
            Self.snapshot(&state, "sync #\(token)")
            var node = state.nodes[token]!
            if node.isDirectory { node.durableEntries = node.entries } else { node.durable = node.cached }
            state.nodes[token] = node
        }
    }

    func madeDirectory(_ path: String) {
        state.withLock { state in
            guard let (parent, name) = Self.parent(of: path, root: root, in: state.nodes) else { return }
            Self.snapshot(&state, "mkdir \(path)")
            let id = state.nextID
            state.nextID += 1
            state.nodes[id] = Node(isDirectory: true)
            state.nodes[parent]!.entries[name] = id
        }
    }

    func renamed(_ source: String, to destination: String) {
        state.withLock { state in
            guard let (from, name) = Self.parent(of: source, root: root, in: state.nodes), let id = state.nodes[from]!.entries[name],
                let (to, newName) = Self.parent(of: destination, root: root, in: state.nodes)
            else { return }
            Self.snapshot(&state, "rename \(source) to \(destination)")
            state.nodes[from]!.entries[name] = nil
            state.nodes[to]!.entries[newName] = id
        }
    }

    func removed(_ path: String) {
        state.withLock { state in
            guard let (parent, name) = Self.parent(of: path, root: root, in: state.nodes), state.nodes[parent]!.entries[name] != nil else { return }
            Self.snapshot(&state, "remove \(path)")
            state.nodes[parent]!.entries[name] = nil
        }
    }

    // MARK: Crash images

    /// Writes into `directory` what the disk holds after a power cut at crash point `point`
    /// (0...``changeCount``): durable entries only (so renames and creations not yet synced
    /// are undone), and in each file its durable bytes, with its length either the synced one
    /// (what was written since is dropped) or the cached one, and each page written since its
    /// last sync either kept whole or left as it was (zero-filled where the file grew), as
    /// `seed` decides.
    func writeCrashImage(at point: Int, into directory: String, seed: UInt64) throws {
        let nodes = state.withLock { state in point < state.snapshots.count ? state.snapshots[point] : state.nodes }
        var random = SeededGenerator(seed: seed)
        try Self.write(Self.rootID, nodes: nodes, to: directory, random: &random)
    }

    private static func write(_ id: Int, nodes: [Int: Node], to path: String, random: inout SeededGenerator) throws {
        for (name, child) in nodes[id]!.durableEntries.sorted(by: { $0.key < $1.key }) {
            let node = nodes[child]!
            let childPath = path + "/" + name
            if node.isDirectory {
                try FileManager.default.createDirectory(atPath: childPath, withIntermediateDirectories: false)
                try write(child, nodes: nodes, to: childPath, random: &random)
            } else {
                FileManager.default.createFile(atPath: childPath, contents: Data(contents(of: node, random: &random)))
            }
        }
    }

    /// A file's bytes after a power cut.
    static func contents(of node: Node, random: inout SeededGenerator) -> [UInt8] {
        let (durable, cached) = (node.durable, node.cached)
        guard durable != cached else { return durable }
        let length = Bool.random(using: &random) ? durable.count : cached.count
        var result: [UInt8] = []
        result.reserveCapacity(length)
        var offset = 0
        while offset < length {
            let end = min(offset + pageSize, length)
            let old = page(durable, offset, end)
            let new = page(cached, offset, end)
            // A page the cache had not written back is on disk as it was: its synced bytes,
            // and zeros where the file grew (the size reached the disk, the data did not).
            // Or it was written back whole. Synced bytes are never lost.
            result += old == new || Bool.random(using: &random) ? old : new
            offset = end
        }
        return result
    }

    private static func page(_ bytes: [UInt8], _ start: Int, _ end: Int) -> [UInt8] {
        var page = start < bytes.count ? Array(bytes[start..<min(end, bytes.count)]) : []
        page += [UInt8](repeating: 0, count: end - start - page.count)
        return page
    }

    // MARK: Paths

    private static func snapshot(_ state: inout State, _ change: String) {
        state.snapshots.append(state.nodes)
        state.changes.append(change)
    }

    /// The changes just before crash point `point`, described (paths shortened to the root).
    func changes(before point: Int, count: Int = 12) -> String {
        state.withLock { state in
            state.changes[max(0, point - count)..<min(point, state.changes.count)].joined(separator: "; ")
        }.replacingOccurrences(of: root, with: "")
    }

    private static func components(_ path: String, root: String) -> [String]? {
        guard path == root || path.hasPrefix(root + "/") else { return nil }
        return path.dropFirst(root.count).split(separator: "/").map(String.init)
    }

    private static func lookup(_ path: String, root: String, in nodes: [Int: Node]) -> Int? {
        guard let components = components(path, root: root) else { return nil }
        var id = rootID
        for component in components {
            guard let next = nodes[id]?.entries[component] else { return nil }
            id = next
        }
        return id
    }

    private static func parent(of path: String, root: String, in nodes: [Int: Node]) -> (Int, String)? {
        guard var components = components(path, root: root), let name = components.popLast() else { return nil }
        var id = rootID
        for component in components {
            guard let next = nodes[id]?.entries[component], nodes[next]!.isDirectory else { return nil }
            id = next
        }
        return (id, name)
    }
}

/// A small, seedable generator (SplitMix64): the same seed makes the same crash images.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

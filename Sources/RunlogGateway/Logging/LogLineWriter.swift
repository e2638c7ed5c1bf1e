import Foundation
import Synchronization

/// Writes log lines to a file descriptor (stdout) from a thread of its own, in batches.
///
/// Whoever logs only appends to a buffer, so a request never waits for a terminal or a log
/// shipper, and many lines go out in one `write`. The buffer is bounded: while it is full (stdout
/// stalled) lines are dropped, counted, and reported by a line of their own once writing moves
/// again. A descriptor that refuses writes for good (its reader went away) costs the logs, said
/// once on stderr, never the server. The writer's thread lasts until ``close()``.
final class LogLineWriter: Sendable {
    private struct State {
        var pending: [UInt8] = []
        /// Dropped since the last note.
        var dropped = 0
        var droppedTotal = 0
        var writerIsAwake = false
        var flushWaiters: [DispatchSemaphore] = []
        var isClosing = false
    }

    let descriptor: Int32
    /// Most bytes waiting to be written; lines beyond it are dropped.
    let capacity: Int
    private let droppedNote: @Sendable (Int) -> [UInt8]
    /// How long the writer gathers lines after the first one wakes it: one wake-up and one
    /// `write` for many lines under load, instead of one each.
    let gathering: DispatchTimeInterval
    private let state = Mutex(State())
    private let wakeup = DispatchSemaphore(value: 0)
    /// Cuts the gathering short: someone waits in ``flush()``. A signal left over from a flush
    /// only shortens one later gathering.
    private let hurry = DispatchSemaphore(value: 0)

    /// - Parameter droppedNote: the line reporting that this many lines were dropped.
    init(descriptor: Int32, capacity: Int = 4 << 20, gathering: DispatchTimeInterval = .milliseconds(5), droppedNote: @escaping @Sendable (Int) -> [UInt8]) {
        self.descriptor = descriptor
        self.capacity = capacity
        self.gathering = gathering
        self.droppedNote = droppedNote
        let thread = Thread { [self] in run() }
        thread.name = "runlog-log-writer"
        thread.start()
    }

    /// Hands a whole line over; drops it when the buffer is full.
    func write(_ line: [UInt8]) {
        let wakesWriter = state.withLock { state -> Bool in
            guard !state.isClosing, state.pending.count + line.count <= capacity else {
                state.dropped += 1
                state.droppedTotal += 1
                return false
            }
            state.pending.append(contentsOf: line)
            return Self.wake(&state)
        }
        if wakesWriter { wakeup.signal() }
    }

    /// Lines dropped since the writer started, for the metric operators alert on.
    var droppedLines: Int { state.withLock { $0.droppedTotal } }

    /// Returns once every line handed over before it is written (or dropped).
    func flush() {
        let done = DispatchSemaphore(value: 0)
        let wakesWriter = state.withLock { state -> Bool in
            state.flushWaiters.append(done)
            return Self.wake(&state)
        }
        if wakesWriter { wakeup.signal() }
        hurry.signal()
        done.wait()
    }

    /// Writes what is buffered, then ends the writer's thread; later lines are dropped.
    func close() {
        state.withLock { $0.isClosing = true }
        flush()
    }

    /// True when the writer was asleep and must be woken (once) to drain the buffer.
    private static func wake(_ state: inout State) -> Bool {
        guard !state.writerIsAwake else { return false }
        state.writerIsAwake = true
        return true
    }

    private func run() {
        var batch: [UInt8] = []
        var isBroken = false
        while true {
            wakeup.wait()
            _ = hurry.wait(timeout: .now() + gathering)
            while true {
                batch.removeAll(keepingCapacity: true)
                let (dropped, finished, closing) = state.withLock { state -> (Int, [DispatchSemaphore], Bool) in
                    swap(&batch, &state.pending)
                    let dropped = state.dropped
                    state.dropped = 0
                    guard batch.isEmpty, dropped == 0 else { return (dropped, [], false) }
                    // Everything handed over so far is out: flushes waiting on it return.
                    state.writerIsAwake = false
                    defer { state.flushWaiters = [] }
                    return (0, state.flushWaiters, state.isClosing)
                }
                guard !batch.isEmpty || dropped > 0 else {
                    for waiter in finished { waiter.signal() }
                    if closing { return }
                    break
                }
                guard !isBroken else { continue }
                if let error = writeAll(batch) ?? (dropped > 0 ? writeAll(droppedNote(dropped)) : nil) {
                    isBroken = true
                    let message = "runlog: stdout refused the operational log (\(String(cString: strerror(error)))); dropping its lines from now on\n"
                    // Straight to the descriptor: FileHandle traps when a write fails, and if
                    // stderr is gone too, there is nowhere left to say it.
                    _ = message.utf8CString.withUnsafeBufferPointer { Foundation.write(STDERR_FILENO, $0.baseAddress, $0.count - 1) }
                }
            }
        }
    }

    /// Writes all the bytes; the error if the descriptor refuses them for good (a closed pipe).
    private func writeAll(_ bytes: [UInt8]) -> Int32? {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written >= 0 {
                    offset += written
                    continue
                }
                switch errno {
                case EINTR:
                    continue
                case EAGAIN:
                    // A non-blocking descriptor: wait until it takes more.
                    var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&ready, 1, -1)
                case let error:
                    return error
                }
            }
            return nil
        }
    }
}

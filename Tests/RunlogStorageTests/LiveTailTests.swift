import Foundation
import NIOCore
import Testing

@testable import RunlogStorage

@Suite struct LiveTailTests {
    /// Lines `first...last`, each 10 bytes ("line 0001\n").
    func chunk(_ first: Int64, _ last: Int64) -> EventChunk {
        var bytes = ByteBuffer()
        for sequence in first...last { bytes.writeString("line \(String(format: "%04d", sequence))\n") }
        return EventChunk(bytes: bytes, firstSequence: first, lastSequence: last)
    }

    func sequences(_ lookup: LiveTail.Lookup) -> [Int64]? {
        guard case .lines(let chunks) = lookup else { return nil }
        return chunks.flatMap { chunk in chunk.lines.map { Int64(String(buffer: $0).dropFirst(5).prefix(4))! } }
    }

    @Test func servesEveryLineAfterAPositionInsideIt() {
        var tail = LiveTail(capacity: 1000, after: 10)
        tail.append(chunk(11, 15))
        tail.append(chunk(16, 16))
        tail.append(chunk(17, 20))
        #expect(sequences(tail.lines(after: 10)) == Array(11...20))
        #expect(sequences(tail.lines(after: 13)) == Array(14...20))
        #expect(sequences(tail.lines(after: 16)) == Array(17...20))
        #expect(sequences(tail.lines(after: 20)) == [])
        // Before what it holds: the reader must read the files.
        #expect(sequences(tail.lines(after: 9)) == nil)
    }

    @Test func aNewTailSendsEarlierPositionsToTheFiles() {
        let tail = LiveTail(capacity: 1000, after: 10)
        #expect(sequences(tail.lines(after: 10)) == [])
        #expect(sequences(tail.lines(after: 3)) == nil)
    }

    @Test func dropsTheOldestLinesBeyondItsCapacity() {
        var tail = LiveTail(capacity: 100, after: 0)
        for first in stride(from: Int64(1), through: 191, by: 10) { tail.append(chunk(first, first + 9)) }
        #expect(tail.bytes <= 100)
        #expect(tail.firstSequence == 191)
        #expect(sequences(tail.lines(after: 190)) == Array(191...200))
        #expect(sequences(tail.lines(after: 189)) == nil)
        // A single flush larger than the capacity is still held, alone.
        tail.append(chunk(201, 230))
        #expect(tail.bytes == 300)
        #expect(sequences(tail.lines(after: 200)) == Array(201...230))
    }

    @Test func aGapRestartsTheTail() {
        var tail = LiveTail(capacity: 1000, after: 0)
        tail.append(chunk(1, 5))
        tail.append(chunk(9, 12))
        #expect(sequences(tail.lines(after: 8)) == Array(9...12))
        #expect(sequences(tail.lines(after: 4)) == nil)
    }

    @Test func withNoCapacityEveryoneReadsTheFiles() {
        var tail = LiveTail(capacity: 0, after: 0)
        tail.append(chunk(1, 5))
        #expect(sequences(tail.lines(after: 0)) == nil)
        #expect(sequences(tail.lines(after: 5)) == [])
    }

    @Test func holdsOnlyTheLinesOfAnOversizedBuffer() {
        var tail = LiveTail(capacity: 1000, after: 0)
        var big = ByteBufferAllocator().buffer(capacity: 1 << 20)
        big.writeString("line 0001\n")
        tail.append(EventChunk(bytes: big, firstSequence: 1, lastSequence: 1))
        guard case .lines(let chunks) = tail.lines(after: 0) else {
            Issue.record("expected lines")
            return
        }
        #expect(chunks[0].bytes.storageCapacity < 4096)
    }
}

import EmberCore
@testable import EmberKernels
import Testing

@Suite("Memory bandwidth")
struct MemoryBandwidthTests {
    /// Lengths that end inside the four-line unrolled loop and after it, and one line.
    @Test("The vector read folds the same words as its scalar twin", arguments: [1, 3, 4, 7, 64, 1001])
    func readMatchesReference(lines: Int) {
        var random = KernelRandom(state: 77 &+ UInt64(lines))
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: lines * 64, alignment: 64)
        defer { buffer.deallocate() }
        for word in 0..<(lines * 8) { buffer.storeBytes(of: random.next(), toByteOffset: word * 8, as: UInt64.self) }
        let base = UnsafeRawPointer(buffer.baseAddress!)
        let before = MemoryBandwidth.readLines(base, count: lines)
        #expect(before == MemoryBandwidth.readLinesReference(base, count: lines))
        // A changed bit in the last word changes the result: the last line was read.
        let last = (lines - 1) * 64 + 56
        buffer.storeBytes(of: buffer.load(fromByteOffset: last, as: UInt64.self) ^ 1, toByteOffset: last, as: UInt64.self)
        #expect(MemoryBandwidth.readLines(base, count: lines) == before ^ 1)
    }

    @Test("Threads read disjoint slices that together cover the buffer; the fastest pass of a scripted clock counts",
          arguments: [1, 2, 3])
    func scriptedClock(threads: Int) {
        let lines = 1000
        var random = KernelRandom(state: 5)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: lines * 64 + 17, alignment: 64)
        defer { buffer.deallocate() }
        for word in 0..<((lines * 64) / 8) { buffer.storeBytes(of: random.next(), toByteOffset: word * 8, as: UInt64.self) }
        let pool = ThreadPool(threadCount: threads)
        // Passes of 4 µs, 2 µs and 8 µs: a clock read before and after each.
        var readings: [UInt64] = [100, 4_100, 10_000, 12_000, 20_000, 28_000]
        let measurement = MemoryBandwidth.measure(buffer: UnsafeRawBufferPointer(buffer), passes: 3, pool: pool) {
            readings.removeFirst()
        }
        #expect(readings.isEmpty)
        #expect(measurement.bytesPerPass == lines * 64)  // the 17-byte tail is not a whole line
        #expect(measurement.threads == threads)
        #expect(measurement.bytesPerSecond == Double(lines * 64) / 2e-6)
        #expect(measurement.checksum == MemoryBandwidth.readLinesReference(UnsafeRawPointer(buffer.baseAddress!), count: lines))
    }

    @Test("A real measurement reads the whole buffer at a finite, positive rate")
    func realMeasurement() {
        let pool = ThreadPool(threadCount: 2)
        let measurement = MemoryBandwidth.measure(bytes: 4 << 20, passes: 2, pool: pool, nanoseconds: MonotonicClock.nanoseconds)
        #expect(measurement.bytesPerPass == 4 << 20)
        #expect(measurement.bytesPerSecond.isFinite && measurement.bytesPerSecond > 0)
        #expect(measurement.threads == 2)
    }
}

import EmberCore

/// The machine's streaming read bandwidth: the roofline of decoding, which reads every weight once
/// per token.
///
/// Each pass reads a buffer far larger than the caches from start to end, split into one contiguous
/// slice per thread of the pool (as the kernels split weight rows), 64 bytes per load into four
/// independent accumulators so the loads, not the additions, set the pace. The fastest pass counts
/// (the others were slowed by something else). The clock is a parameter, so the arithmetic is
/// testable with a scripted one.
public enum MemoryBandwidth {
    /// Bytes read per pass unless told otherwise: 256 MiB, several times any last-level cache of a
    /// phone or of the hosts Ember is measured on.
    public static let defaultBufferBytes = 256 << 20

    /// One measurement: the fastest pass's bytes per second, and the checksum of what was read
    /// (which keeps the reads from being optimized away, and lets a test check every byte was read).
    public struct Measurement: Sendable, Equatable {
        public var bytesPerSecond: Double
        public var bytesPerPass: Int
        public var passes: Int
        public var threads: Int
        public var checksum: UInt64
    }

    /// Reads `buffer` `passes` times on `pool`'s active threads; `nanoseconds` is the clock.
    public static func measure(buffer: UnsafeRawBufferPointer, passes: Int, pool: ThreadPool,
                               nanoseconds: () -> UInt64) -> Measurement {
        precondition(passes >= 1)
        let lines = buffer.count / 64
        let base = buffer.baseAddress!
        let threads = min(pool.activeThreadCount, max(lines, 1))
        var best = UInt64.max
        var checksum: UInt64 = 0
        withUnsafeTemporaryAllocation(of: UInt64.self, capacity: pool.threadCount * 8) { sums in
            for _ in 0..<passes {
                sums.initialize(repeating: 0)
                let start = nanoseconds()
                pool.parallelFor(threads) { range, _ in
                    for slice in range {
                        // Each slice's checksum in its own cache line, so the threads share none.
                        let lineRange = ThreadPool.range(of: slice, threads: threads, count: lines)
                        sums[slice * 8] = readLines(base + lineRange.lowerBound * 64, count: lineRange.count)
                    }
                }
                let elapsed = nanoseconds() &- start
                best = min(best, max(elapsed, 1))
                checksum = (0..<threads).reduce(0) { $0 ^ sums[$1 * 8] }
            }
        }
        let bytes = lines * 64
        return Measurement(bytesPerSecond: Double(bytes) / (Double(best) / 1e9), bytesPerPass: bytes, passes: passes,
                           threads: threads, checksum: checksum)
    }

    /// Allocates and fills a buffer of `bytes` (so every page is mapped before the first pass),
    /// measures it, and frees it.
    public static func measure(bytes: Int = defaultBufferBytes, passes: Int = 5, pool: ThreadPool,
                               nanoseconds: () -> UInt64) -> Measurement {
        precondition(bytes >= 64)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes, alignment: 64)
        defer { buffer.deallocate() }
        // Not zeros: pages of zeros may all be mapped to one shared page and never reach memory.
        pool.parallelFor(bytes / 4096 + 1) { range, _ in
            for page in range {
                let start = page * 4096
                guard start < bytes else { continue }
                for offset in stride(from: start, to: min(start + 4096, bytes), by: 8) where offset + 8 <= bytes {
                    buffer.storeBytes(of: UInt64(truncatingIfNeeded: offset) &* 0x9E37_79B9_7F4A_7C15, toByteOffset: offset, as: UInt64.self)
                }
            }
        }
        return measure(buffer: UnsafeRawBufferPointer(buffer), passes: passes, pool: pool, nanoseconds: nanoseconds)
    }

    /// The exclusive-or of every 64-bit word of `count` 64-byte lines at `start`, folded to 64 bits.
    static func readLines(_ start: UnsafeRawPointer, count: Int) -> UInt64 {
        var a = SIMD8<UInt64>(), b = SIMD8<UInt64>(), c = SIMD8<UInt64>(), d = SIMD8<UInt64>()
        var line = 0
        while line + 4 <= count {
            let p = start + line * 64
            a ^= p.load(as: SIMD8<UInt64>.self)
            b ^= p.load(fromByteOffset: 64, as: SIMD8<UInt64>.self)
            c ^= p.load(fromByteOffset: 128, as: SIMD8<UInt64>.self)
            d ^= p.load(fromByteOffset: 192, as: SIMD8<UInt64>.self)
            line += 4
        }
        while line < count {
            a ^= (start + line * 64).load(as: SIMD8<UInt64>.self)
            line += 1
        }
        let all = a ^ b ^ c ^ d
        var folded: UInt64 = 0
        for i in 0..<8 { folded ^= all[i] }
        return folded
    }

    /// The reference of `readLines`: the exclusive-or of every 64-bit word, one at a time.
    static func readLinesReference(_ start: UnsafeRawPointer, count: Int) -> UInt64 {
        var folded: UInt64 = 0
        for word in 0..<(count * 8) { folded ^= start.load(fromByteOffset: word * 8, as: UInt64.self) }
        return folded
    }
}

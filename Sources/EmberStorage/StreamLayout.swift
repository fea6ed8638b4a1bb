import EmberCore
import EmberKernels

/// How the blocks of one tensor type split into byte streams before compression.
///
/// A block of `blockByteCount` bytes is cut into `runs` — contiguous byte ranges that together cover
/// the block exactly once. Stream `k` is run `k` of every block, one block after another. Grouping
/// the half-precision scales' low bytes, their high bytes and the quant payload into separate streams
/// lets zstd give each its own Huffman table: the scales' high bytes shrink to 30–45 %, where the
/// interleaved block barely compresses (docs/FORMAT.md, "Streams").
///
/// The layout of every grouped chunk is written into the container's index, so a reader needs no
/// table of its own; ``builtIn(for:)`` is what the writer uses, and readers take a fast path when a
/// layout equals it.
public struct StreamLayout: Sendable, Hashable, CustomStringConvertible {
    /// One contiguous byte range of a block.
    public struct Run: Sendable, Hashable {
        public let start: Int
        public let length: Int

        public init(start: Int, length: Int) {
            self.start = start
            self.length = length
        }
    }

    public let blockByteCount: Int
    public let runs: [Run]

    /// A layout; nil unless `runs` cover `0..<blockByteCount` exactly once and every run is non-empty.
    public init?(blockByteCount: Int, runs: [Run]) {
        guard blockByteCount > 0, blockByteCount <= StreamLayout.maximumBlockByteCount,
              !runs.isEmpty, runs.count <= StreamLayout.maximumRunCount
        else { return nil }
        var covered = [Bool](repeating: false, count: blockByteCount)
        for run in runs {
            guard run.length > 0, run.start >= 0, run.start <= blockByteCount - run.length else { return nil }
            for index in run.start..<(run.start + run.length) {
                if covered[index] { return nil }
                covered[index] = true
            }
        }
        guard !covered.contains(false) else { return nil }
        self.blockByteCount = blockByteCount
        self.runs = runs
        kernel = StreamLayout.kernel(blockByteCount: blockByteCount, runs: runs)
    }

    /// The specialised ungrouping loop for this layout, or `.generic`.
    let kernel: Kernel

    static let maximumBlockByteCount = 4096
    static let maximumRunCount = 64

    public var description: String {
        "\(blockByteCount)-byte blocks: " + runs.map { $0.length == 1 ? "[\($0.start)]" : "[\($0.start)..<\($0.start + $0.length)]" }
            .joined(separator: " ")
    }

    /// Bytes stream `run` holds for `blockCount` blocks.
    func streamByteCount(run: Int, blockCount: Int) -> Int { runs[run].length * blockCount }

    // MARK: Built-in layouts

    /// What one run of a built-in layout holds; the writer compresses side information (scales,
    /// exponents) harder than the near-random quant payload.
    enum Content {
        case side
        case payload
    }

    /// The layout the writer uses for `type`, with the content of each run; nil for types stored as
    /// plain bytes (`i8`).
    static func builtInRuns(for type: TensorType) -> [(Run, Content)]? {
        func plane(_ index: Int, _ content: Content = .side) -> (Run, Content) { (Run(start: index, length: 1), content) }
        func half(_ start: Int) -> [(Run, Content)] { [plane(start), plane(start + 1)] }
        func bytes(_ start: Int, _ length: Int, _ content: Content = .payload) -> (Run, Content) {
            (Run(start: start, length: length), content)
        }
        switch type {
        case .f32, .i32:
            return [plane(0, .payload), plane(1, .payload), plane(2), plane(3)]
        case .f16, .bf16, .i16:
            return [plane(0, .payload), plane(1)]
        case .f64, .i64:
            return (0..<8).map { plane($0, $0 < 6 ? .payload : .side) }
        case .i8:
            return nil
        case .q4_0:
            return half(0) + [bytes(2, 16)]
        case .q4_1:
            return half(0) + half(2) + [bytes(4, 16)]
        case .q5_0:
            return half(0) + [bytes(2, 4), bytes(6, 16)]
        case .q5_1:
            return half(0) + half(2) + [bytes(4, 4), bytes(8, 16)]
        case .q8_0:
            return half(0) + [bytes(2, 32)]
        case .q8_1:
            return half(0) + half(2) + [bytes(4, 32)]
        case .q2_K:
            return [bytes(0, 16, .side), bytes(16, 64)] + half(80) + half(82)
        case .q3_K:
            return [bytes(0, 32), bytes(32, 64), bytes(96, 12, .side)] + half(108)
        case .q4_K:
            return half(0) + half(2) + [bytes(4, 12, .side), bytes(16, 128)]
        case .q5_K:
            return half(0) + half(2) + [bytes(4, 12, .side), bytes(16, 32), bytes(48, 128)]
        case .q6_K:
            return [bytes(0, 128), bytes(128, 64), bytes(192, 16, .side)] + half(208)
        case .q8_K:
            return [plane(0), plane(1), plane(2), plane(3), bytes(4, 256), bytes(260, 32, .side)]
        }
    }

    /// The layout the writer uses for `type`, or nil when the type is stored as plain bytes.
    public static func builtIn(for type: TensorType) -> StreamLayout? {
        guard let runs = builtInRuns(for: type) else { return nil }
        guard let layout = StreamLayout(blockByteCount: type.bytesPerBlock, runs: runs.map(\.0)) else {
            preconditionFailure("the built-in layout of \(type) does not cover its \(type.bytesPerBlock)-byte block")
        }
        return layout
    }

    // MARK: Grouping

    /// Writes the streams of `blockCount` blocks at `source` to `destination`, stream after stream.
    func group(_ source: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutableRawPointer) {
        var output = destination
        for run in runs {
            for block in 0..<blockCount {
                (output + block * run.length).copyMemory(from: source + block * blockByteCount + run.start, byteCount: run.length)
            }
            output += run.length * blockCount
        }
    }

    /// Rebuilds `blockCount` blocks at `destination` from their streams at `source`, stream after
    /// stream — the inverse of ``group(_:blockCount:into:)``.
    func ungroup(_ source: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutableRawPointer) {
        ungroup(source, blockCount: blockCount, blocks: 0..<blockCount, into: destination)
    }

    /// Rebuilds blocks `blocks` of the `blockCount` whose streams are at `source`.
    @inline(__always)
    func ungroup(_ source: UnsafeRawPointer, blockCount: Int, blocks: Range<Int>, into destination: UnsafeMutableRawPointer) {
        switch kernel {
        case .planes2: Ungroup.planes2(source, blockCount, blocks, destination)
        case .planes4: Ungroup.planes4(source, blockCount, blocks, destination)
        case .q4_0: Ungroup.q4_0(source, blockCount, blocks, destination)
        case .q4_1: Ungroup.q4_1(source, blockCount, blocks, destination)
        case .q5_0: Ungroup.q5_0(source, blockCount, blocks, destination)
        case .q8_0: Ungroup.q8_0(source, blockCount, blocks, destination)
        case .q4_K: Ungroup.q4_K(source, blockCount, blocks, destination)
        case .q6_K: Ungroup.q6_K(source, blockCount, blocks, destination)
        case .generic: ungroupGeneric(source, blockCount: blockCount, blocks: blocks, into: destination)
        }
    }

    /// Rebuilds the blocks and returns the XXH3-64 of the rebuilt bytes, hashing each few kilobytes
    /// right after they are written, while they are still in the L1 cache.
    func ungroupAndHash(_ source: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutableRawPointer) -> UInt64 {
        let byteCount = blockCount * blockByteCount
        guard byteCount > 240 else {
            ungroup(source, blockCount: blockCount, into: destination)
            return XXH3.hash(UnsafeRawBufferPointer(start: destination, count: byteCount))
        }
        var hasher = XXH3.LongHasher(length: byteCount)
        let step = max(1, 8192 / blockByteCount)
        var start = 0
        while start < blockCount {
            let end = min(start + step, blockCount)
            ungroup(source, blockCount: blockCount, blocks: start..<end, into: destination)
            hasher.consume(destination, available: end * blockByteCount)
            start = end
        }
        return hasher.finish(destination)
    }

    /// The reference for every specialised kernel: one run of one block at a time.
    func ungroupGeneric(_ source: UnsafeRawPointer, blockCount: Int, into destination: UnsafeMutableRawPointer) {
        ungroupGeneric(source, blockCount: blockCount, blocks: 0..<blockCount, into: destination)
    }

    func ungroupGeneric(_ source: UnsafeRawPointer, blockCount: Int, blocks: Range<Int>, into destination: UnsafeMutableRawPointer) {
        var input = source
        for run in runs {
            for block in blocks {
                (destination + block * blockByteCount + run.start).copyMemory(from: input + block * run.length, byteCount: run.length)
            }
            input += run.length * blockCount
        }
    }

    enum Kernel: Sendable, Hashable {
        case planes2, planes4, q4_0, q4_1, q5_0, q8_0, q4_K, q6_K, generic
    }

    static func kernel(blockByteCount: Int, runs: [Run]) -> Kernel {
        let shape = runs.map { [$0.start, $0.length] }
        for (kernel, type) in [(Kernel.q4_0, TensorType.q4_0), (.q4_1, .q4_1), (.q5_0, .q5_0), (.q8_0, .q8_0),
                               (.q4_K, .q4_K), (.q6_K, .q6_K), (.planes2, .f16), (.planes4, .f32)] {
            guard let builtIn = builtInRuns(for: type) else { continue }
            if blockByteCount == type.bytesPerBlock, shape == builtIn.map({ [$0.0.start, $0.0.length] }) {
                return kernel
            }
        }
        return .generic
    }
}

/// Specialised ungrouping loops for the layouts the writer uses most; each is tested against
/// ``StreamLayout/ungroupGeneric(_:blockCount:into:)``.
enum Ungroup {
    @inline(__always)
    static func byte(_ pointer: UnsafeRawPointer, _ index: Int) -> UInt32 {
        UInt32(pointer.load(fromByteOffset: index, as: UInt8.self))
    }

    static func planes2(_ source: UnsafeRawPointer, _ count: Int, _ blocks: Range<Int>, _ destination: UnsafeMutableRawPointer) {
        let low = source, high = source + count
        var index = blocks.lowerBound
        while index + 16 <= blocks.upperBound {
            let lows = SIMD16<UInt16>(truncatingIfNeeded: low.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self))
            let highs = SIMD16<UInt16>(truncatingIfNeeded: high.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self))
            destination.storeBytes(of: (lows | highs &<< 8).littleEndianVector, toByteOffset: index * 2, as: SIMD16<UInt16>.self)
            index += 16
        }
        while index < blocks.upperBound {
            let value = UInt16(byte(low, index) | byte(high, index) << 8)
            destination.storeBytes(of: value.littleEndian, toByteOffset: index * 2, as: UInt16.self)
            index += 1
        }
    }

    static func planes4(_ source: UnsafeRawPointer, _ count: Int, _ blocks: Range<Int>, _ destination: UnsafeMutableRawPointer) {
        let plane0 = source, plane1 = source + count, plane2 = source + 2 * count, plane3 = source + 3 * count
        var index = blocks.lowerBound
        while index + 16 <= blocks.upperBound {
            let b0 = SIMD16<UInt32>(truncatingIfNeeded: plane0.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self))
            let b1 = SIMD16<UInt32>(truncatingIfNeeded: plane1.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self))
            let b2 = SIMD16<UInt32>(truncatingIfNeeded: plane2.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self))
            let b3 = SIMD16<UInt32>(truncatingIfNeeded: plane3.loadUnaligned(fromByteOffset: index, as: SIMD16<UInt8>.self))
            let words = b0 | b1 &<< 8 | b2 &<< 16 | b3 &<< 24
            destination.storeBytes(of: words.littleEndianVector, toByteOffset: index * 4, as: SIMD16<UInt32>.self)
            index += 16
        }
        while index < blocks.upperBound {
            let value = byte(plane0, index) | byte(plane1, index) << 8 | byte(plane2, index) << 16 | byte(plane3, index) << 24
            destination.storeBytes(of: value.littleEndian, toByteOffset: index * 4, as: UInt32.self)
            index += 1
        }
    }

    /// `d.lo d.hi qs[16]` → 18-byte blocks.
    static func q4_0(_ source: UnsafeRawPointer, _ count: Int, _ blocks: Range<Int>, _ destination: UnsafeMutableRawPointer) {
        let low = source, high = source + count, payload = source + 2 * count
        for block in blocks {
            let output = destination + block * 18
            output.storeBytes(of: UInt16(byte(low, block) | byte(high, block) << 8).littleEndian, as: UInt16.self)
            output.storeBytes(of: payload.loadUnaligned(fromByteOffset: block * 16, as: SIMD16<UInt8>.self),
                              toByteOffset: 2, as: SIMD16<UInt8>.self)
        }
    }

    /// `d.lo d.hi m.lo m.hi qs[16]` → 20-byte blocks.
    static func q4_1(_ source: UnsafeRawPointer, _ count: Int, _ blocks: Range<Int>, _ destination: UnsafeMutableRawPointer) {
        let dLow = source, dHigh = source + count, mLow = source + 2 * count, mHigh = source + 3 * count
        let payload = source + 4 * count
        for block in blocks {
            let output = destination + block * 20
            let scales = byte(dLow, block) | byte(dHigh, block) << 8 | byte(mLow, block) << 16 | byte(mHigh, block) << 24
            output.storeBytes(of: scales.littleEndian, as: UInt32.self)
            output.storeBytes(of: payload.loadUnaligned(fromByteOffset: block * 16, as: SIMD16<UInt8>.self),
                              toByteOffset: 4, as: SIMD16<UInt8>.self)
        }
    }

    /// `d.lo d.hi qh[4] qs[16]` → 22-byte blocks.
    static func q5_0(_ source: UnsafeRawPointer, _ count: Int, _ blocks: Range<Int>, _ destination: UnsafeMutableRawPointer) {
        let low = source, high = source + count, highBits = source + 2 * count, payload = source + 6 * count
        for block in blocks {
            let output = destination + block * 22
            output.storeBytes(of: UInt16(byte(low, block) | byte(high, block) << 8).littleEndian, as: UInt16.self)
            output.storeBytes(of: highBits.loadUnaligned(fromByteOffset: block * 4, as: UInt32.self), toByteOffset: 2, as: UInt32.self)
            output.storeBytes(of: payload.loadUnaligned(fromByteOffset: block * 16, as: SIMD16<UInt8>.self),
                              toByteOffset: 6, as: SIMD16<UInt8>.self)
        }
    }

    /// `d.lo d.hi qs[32]` → 34-byte blocks.
    static func q8_0(_ source: UnsafeRawPointer, _ count: Int, _ blocks: Range<Int>, _ destination: UnsafeMutableRawPointer) {
        let low = source, high = source + count, payload = source + 2 * count
        for block in blocks {
            let output = destination + block * 34
            output.storeBytes(of: UInt16(byte(low, block) | byte(high, block) << 8).littleEndian, as: UInt16.self)
            output.storeBytes(of: payload.loadUnaligned(fromByteOffset: block * 32, as: SIMD32<UInt8>.self),
                              toByteOffset: 2, as: SIMD32<UInt8>.self)
        }
    }

    /// `d.lo d.hi dmin.lo dmin.hi scales[12] qs[128]` → 144-byte blocks.
    static func q4_K(_ source: UnsafeRawPointer, _ count: Int, _ blocks: Range<Int>, _ destination: UnsafeMutableRawPointer) {
        let dLow = source, dHigh = source + count, minLow = source + 2 * count, minHigh = source + 3 * count
        let scales = source + 4 * count, payload = source + 16 * count
        for block in blocks {
            let output = destination + block * 144
            let halves = byte(dLow, block) | byte(dHigh, block) << 8 | byte(minLow, block) << 16 | byte(minHigh, block) << 24
            output.storeBytes(of: halves.littleEndian, as: UInt32.self)
            output.storeBytes(of: scales.loadUnaligned(fromByteOffset: block * 12, as: UInt64.self), toByteOffset: 4, as: UInt64.self)
            output.storeBytes(of: scales.loadUnaligned(fromByteOffset: block * 12 + 8, as: UInt32.self), toByteOffset: 12, as: UInt32.self)
            let input = payload + block * 128
            output.storeBytes(of: input.loadUnaligned(as: SIMD64<UInt8>.self), toByteOffset: 16, as: SIMD64<UInt8>.self)
            output.storeBytes(of: input.loadUnaligned(fromByteOffset: 64, as: SIMD64<UInt8>.self), toByteOffset: 80, as: SIMD64<UInt8>.self)
        }
    }

    /// `ql[128] qh[64] scales[16] d.lo d.hi` → 210-byte blocks.
    static func q6_K(_ source: UnsafeRawPointer, _ count: Int, _ blocks: Range<Int>, _ destination: UnsafeMutableRawPointer) {
        let low = source, high = source + 128 * count, scales = source + 192 * count
        let dLow = source + 208 * count, dHigh = source + 209 * count
        for block in blocks {
            let output = destination + block * 210
            let lowInput = low + block * 128
            output.storeBytes(of: lowInput.loadUnaligned(as: SIMD64<UInt8>.self), as: SIMD64<UInt8>.self)
            output.storeBytes(of: lowInput.loadUnaligned(fromByteOffset: 64, as: SIMD64<UInt8>.self), toByteOffset: 64, as: SIMD64<UInt8>.self)
            output.storeBytes(of: high.loadUnaligned(fromByteOffset: block * 64, as: SIMD64<UInt8>.self), toByteOffset: 128, as: SIMD64<UInt8>.self)
            output.storeBytes(of: scales.loadUnaligned(fromByteOffset: block * 16, as: SIMD16<UInt8>.self), toByteOffset: 192, as: SIMD16<UInt8>.self)
            output.storeBytes(of: UInt16(byte(dLow, block) | byte(dHigh, block) << 8).littleEndian, toByteOffset: 208, as: UInt16.self)
        }
    }
}

extension SIMD16 where Scalar == UInt16 {
    /// The lanes as little-endian words (a no-op on little-endian machines).
    @inline(__always)
    var littleEndianVector: Self {
        #if _endian(big)
        var result = self
        for lane in 0..<16 { result[lane] = result[lane].byteSwapped }
        return result
        #else
        return self
        #endif
    }
}

extension SIMD16 where Scalar == UInt32 {
    @inline(__always)
    var littleEndianVector: Self {
        #if _endian(big)
        var result = self
        for lane in 0..<16 { result[lane] = result[lane].byteSwapped }
        return result
        #else
        return self
        #endif
    }
}

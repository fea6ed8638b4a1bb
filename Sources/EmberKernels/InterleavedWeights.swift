import EmberCore

/// Weights rearranged at load time so one vector instruction works on many rows at once.
///
/// A row-major quantized matrix makes a dot product reduce each 32-element block horizontally,
/// which costs more than the multiplications for small models. Interleaving `rowGroup` rows block
/// by block lets the kernel keep one lane per row: per block it loads the byte at position j of all
/// the group's rows, multiplies by the one activation value they share, and never reduces across
/// lanes until the row ends.
///
/// Layouts, per group of 32 rows and per 32-element block:
/// - Q4_1 (and Q4_K, rewritten as Q4_1 sub-blocks, 11 % larger than the file): 32 `d` halves,
///   32 `m` halves, then for j in 0..<16 the 32 rows' packed byte j (low nibble = element j,
///   high nibble = element j + 16). Same bytes as the file for Q4_1.
/// - Q8_0 (and Q5_0, decoded to signed bytes, 55 % larger than the file): 32 `d` halves, then for
///   j in 0..<32 the 32 rows' byte j.
/// - Q6_K, per 256 elements (the same size as the file): see `interleaveQ6_K`.
///
/// `@unchecked Sendable`: the buffer is written once in `init` and only read afterwards.
public final class InterleavedWeights: @unchecked Sendable {
    public static let rowGroup = 32
    public let type: TensorType
    /// The file's type (Q4_K and Q5_0 are stored in another type's layout).
    public let sourceType: TensorType
    /// For Q8_0: add up in llama.cpp's order (eight partial sums a row, `multiplyQ8_0`), which makes
    /// a model whose every matrix has such a kernel give llama.cpp's logits bit for bit; false
    /// keeps one integer sum per block (`multiplyBlockSums`), about a third faster, for models
    /// that cannot match llama.cpp's bits anyway (Q4_K, Q4_1, Q5_0, Q6_K matrices beside it).
    public let llamaOrder: Bool
    public let rows: Int
    public let columns: Int
    let storage: UnsafeMutableRawPointer
    public let byteCount: Int

    /// Bytes of one group's block in Q4_1's layout: 32 `d` and 32 `m` halves, 32 rows × 16 packed bytes.
    static let q4_1GroupBlockBytes = 640
    /// Bytes of one group's block in Q8_0's layout: 32 `d` halves, 32 rows × 32 bytes.
    static let q8_0GroupBlockBytes = 1088

    /// Bytes of one group's block (the format's row; Q5_0 and Q4_K in another type's layout: see `init`).
    static func groupBlockBytes(_ type: TensorType) -> Int {
        QuantizedFormat.format(type)?.groupBlockBytes ?? 0
    }

    /// Whether `type` and `rows` can be interleaved.
    public static func supports(_ type: TensorType, rows: Int, columns: Int) -> Bool {
        QuantizedFormat.format(type)?.interleavedType != nil && rows % rowGroup == 0 && columns % type.blockSize == 0
    }

    /// Rearranges a row-major matrix of `type`; nil when the layout is not supported.
    ///
    /// Works in chunks of rows and calls `release` with each chunk's source bytes once copied, so
    /// the caller can drop them from memory and the peak stays near one copy.
    public init?(type: TensorType, data: UnsafeRawPointer, rows: Int, columns: Int, pool: ThreadPool? = nil,
                 llamaOrder: Bool = true, release: (UnsafeRawPointer, Int) -> Void = { _, _ in }) {
        guard Self.supports(type, rows: rows, columns: columns) else { return nil }
        self.llamaOrder = llamaOrder
        // Q4_K is multiplied as Q4_1 (see below), so activations are quantized as for Q4_1.
        self.type = type == .q4_K ? .q4_1 : type
        self.sourceType = type
        self.rows = rows
        self.columns = columns
        let blocks = columns / 32
        let groupBlock = Self.groupBlockBytes(type)
        byteCount = rows / Self.rowGroup * blocks * groupBlock
        storage = .allocate(byteCount: byteCount, alignment: 64)
        let rowBytes = type.byteCount(elements: columns)!
        let storage = self.storage
        let groups = rows / Self.rowGroup
        let blockBytes = type.bytesPerBlock
        // Where the packed quants sit in a source block, how many bytes they take, and where the
        // group's quants start in the interleaved block (after the scales and, for Q5_0, high bits).
        let quantOffset = type == .q4_1 ? 4 : (type == .q5_0 ? 6 : 2)
        let quantBytes = type == .q8_0 ? 32 : 16
        let quantStart = type == .q4_1 ? 128 : (type == .q5_0 ? 192 : 64)
        // Q5_0 is decoded to signed bytes (q - 16) in Q8_0's layout: 55 % more bytes than the file,
        // but the kernel then skips the per-token extraction of the fifth bit, which costs more
        // than the extra bandwidth on these small matrices.
        // Q4_K's 32-element sub-blocks are Q4_1 blocks with d = d·scale and m = −dmin·min (each
        // rounded to half precision, a relative change below 0.05 %); 11 % more bytes than the
        // file, and the fast Q4_1 kernel with 32-element activation blocks.
        if type == .q6_K {
            let superBlocks = columns / 256
            let work = { (range: Range<Int>, _: Int) in
                Self.interleaveQ6_K(data, rowBytes: rowBytes, superBlocks: superBlocks, groups: range, into: storage)
            }
            Self.run(work, groups: groups, rowBytes: rowBytes, data: data, pool: pool, release: release)
            return
        }
        if type == .q4_K {
            let work = { (range: Range<Int>, _: Int) in
                for group in range {
                    for block in 0..<blocks {
                        let superBlock = block / 8, sub = block % 8
                        let destination = storage + (group * blocks + block) * groupBlock
                        for lane in 0..<Self.rowGroup {
                            let source = data + (group * Self.rowGroup + lane) * rowBytes + superBlock * 144
                            let d = loadHalf(source, 0), dmin = loadHalf(source, 2)
                            let (scale, minimum) = ReferenceKernels.scaleAndMinK4(sub, source + 4)
                            storeHalf(d * Float(scale), destination, 2 * lane)
                            storeHalf(-dmin * Float(minimum), destination, 64 + 2 * lane)
                            // Sub-block `sub` is the low (even) or high (odd) nibbles of bytes 32·(sub/2) ..< +32.
                            let quants = source + 16 + (sub / 2) * 32
                            let shift: UInt8 = sub % 2 == 0 ? 0 : 4
                            for j in 0..<16 {
                                let first = (quants.load(fromByteOffset: j, as: UInt8.self) >> shift) & 0x0F
                                let second = (quants.load(fromByteOffset: j + 16, as: UInt8.self) >> shift) & 0x0F
                                destination.storeBytes(of: first | (second << 4), toByteOffset: 128 + j * Self.rowGroup + lane, as: UInt8.self)
                            }
                        }
                    }
                }
            }
            Self.run(work, groups: groups, rowBytes: rowBytes, data: data, pool: pool, release: release)
            return
        }
        if type == .q5_0 {
            let work = { (range: Range<Int>, _: Int) in
                for group in range {
                    for block in 0..<blocks {
                        let destination = storage + (group * blocks + block) * groupBlock
                        for lane in 0..<Self.rowGroup {
                            let source = data + (group * Self.rowGroup + lane) * rowBytes + block * 22
                            destination.storeBytes(of: source.loadUnaligned(as: UInt16.self), toByteOffset: 2 * lane, as: UInt16.self)
                            let high = source.loadUnaligned(fromByteOffset: 2, as: UInt32.self)
                            for j in 0..<16 {
                                let byte = source.load(fromByteOffset: 6 + j, as: UInt8.self)
                                let q0 = Int8(byte & 0x0F | UInt8((high >> UInt32(j)) & 1) << 4) - 16
                                let q1 = Int8(byte >> 4 | UInt8((high >> UInt32(j + 16)) & 1) << 4) - 16
                                destination.storeBytes(of: q0, toByteOffset: 64 + j * Self.rowGroup + lane, as: Int8.self)
                                destination.storeBytes(of: q1, toByteOffset: 64 + (j + 16) * Self.rowGroup + lane, as: Int8.self)
                            }
                        }
                    }
                }
            }
            Self.run(work, groups: groups, rowBytes: rowBytes, data: data, pool: pool, release: release)
            return
        }
        let hasMinimum = type == .q4_1
        let work = { (range: Range<Int>, _: Int) in
            let lanes = Self.rowGroup
            for group in range {
                let groupRows = data + group * lanes * rowBytes
                for block in 0..<blocks {
                    let destination = storage + (group * blocks + block) * groupBlock
                    let sources = groupRows + block * blockBytes
                    let scales = destination.assumingMemoryBound(to: UInt16.self)
                    for lane in 0..<lanes {
                        scales[lane] = sources.loadUnaligned(fromByteOffset: lane * rowBytes, as: UInt16.self)
                    }
                    if hasMinimum {
                        for lane in 0..<lanes {
                            scales[lanes + lane] = sources.loadUnaligned(fromByteOffset: lane * rowBytes + 2, as: UInt16.self)
                        }
                    }
                    // Byte j of every lane's block, written contiguously.
                    let quants = (destination + quantStart).assumingMemoryBound(to: UInt8.self)
                    let sourceBytes = (sources + quantOffset).assumingMemoryBound(to: UInt8.self)
                    for j in 0..<quantBytes {
                        let out = quants + j * lanes
                        for lane in 0..<lanes { out[lane] = sourceBytes[lane * rowBytes + j] }
                    }
                }
            }
        }
        Self.run(work, groups: groups, rowBytes: rowBytes, data: data, pool: pool, release: release)
    }

    /// Runs `work` over the groups in chunks, on the pool when given, releasing each chunk's source.
    private static func run(_ work: (Range<Int>, Int) -> Void, groups: Int, rowBytes: Int, data: UnsafeRawPointer,
                            pool: ThreadPool?, release: (UnsafeRawPointer, Int) -> Void) {
        let chunkGroups = 64
        var firstGroup = 0
        while firstGroup < groups {
            let lastGroup = min(firstGroup + chunkGroups, groups)
            let count = lastGroup - firstGroup
            if let pool {
                pool.parallelFor(count) { range, thread in
                    work((firstGroup + range.lowerBound)..<(firstGroup + range.upperBound), thread)
                }
            } else {
                work(firstGroup..<lastGroup, 0)
            }
            release(data + firstGroup * rowGroup * rowBytes, count * rowGroup * rowBytes)
            firstGroup = lastGroup
        }
    }

    deinit { storage.deallocate() }

    /// `output[t * rows + r]` for the rows of groups `groupRange` and every token, from activations
    /// quantized to Q8_1 (`activationRowBytes` apart).
    func multiplyQ4_1(groups groupRange: Range<Int>, activations: UnsafeRawPointer, activationRowBytes: Int, tokens: Int,
                      firstToken: Int = 0, output: UnsafeMutablePointer<Float>) {
        let blocks = columns / 32
        let groupBlock = Self.q4_1GroupBlockBytes
        for group in groupRange {
            for token in firstToken..<tokens {
                let activationRow = activations + token * activationRowBytes
                // Rows 0..<16 and 16..<32 of the group, one lane each.
                var low = SIMD16<Float>(), high = SIMD16<Float>()
                var minimumLow = SIMD16<Float>(), minimumHigh = SIMD16<Float>()
                for block in 0..<blocks {
                    let source = storage + (group * blocks + block) * groupBlock
                    let activation = activationRow + block * 36
                    let quants = (activation + 4).assumingMemoryBound(to: Int8.self)
                    let packed = source + 128
                    var integerLow = SIMD16<Int32>(), integerHigh = SIMD16<Int32>()
                    // Eight byte positions at a time: 8 × 2 products of at most 15 · 128 fit in 16 bits.
                    for half in 0..<2 {
                        var partial = SIMD32<Int16>()
                        for j in (half * 8)..<(half * 8 + 8) {
                            let (first, second) = Widening.nibbles(packed + j * 32)
                            partial &+= first &* SIMD32<Int16>(repeating: Int16(quants[j]))
                                &+ second &* SIMD32<Int16>(repeating: Int16(quants[j + 16]))
                        }
                        let (partialLow, partialHigh) = Widening.words(partial)
                        integerLow &+= partialLow
                        integerHigh &+= partialHigh
                    }
                    let activationScale = loadHalf(activation, 0)
                    let activationSum = loadHalf(activation, 2)
                    low += Widening.floats(integerLow) * (Widening.halves(source) * activationScale)
                    high += Widening.floats(integerHigh) * (Widening.halves(source + 32) * activationScale)
                    minimumLow += Widening.halves(source + 64) * activationSum
                    minimumHigh += Widening.halves(source + 96) * activationSum
                }
                let destination = UnsafeMutableRawPointer(output + token * rows + group * Self.rowGroup)
                destination.storeBytes(of: low + minimumLow, as: SIMD16<Float>.self)
                destination.storeBytes(of: high + minimumHigh, toByteOffset: 64, as: SIMD16<Float>.self)
            }
        }
    }

    /// `output[t * rows + r]` for Q8_0 weights and Q8_0 activations, in llama.cpp's order (see
    /// `VectorKernels.dotQ8_0`): per row eight partial sums, part p the integer sum of elements
    /// 4p ..< 4p + 4 of each block accumulated with a fused multiply-add by d_w · d_a, the parts
    /// added in halves at the end.
    func multiplyQ8_0(groups groupRange: Range<Int>, activations: UnsafeRawPointer, activationRowBytes: Int, tokens: Int,
                      firstToken: Int = 0, output: UnsafeMutablePointer<Float>) {
        let blocks = columns / 32
        let groupBlock = Self.q8_0GroupBlockBytes
        let lanes = Self.rowGroup
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 10 * lanes) { buffer in
            let scales = buffer.baseAddress!        // 32 × Float: d_w · d_a of each row
            let accumulators = scales + lanes       // 8 parts × 32 rows
            let quantFloats = accumulators + 8 * lanes  // the block's 32 activation quants as floats
            for group in groupRange {
                for token in firstToken..<tokens {
                    let activationRow = activations + token * activationRowBytes
                    for i in 0..<(8 * lanes) { accumulators[i] = 0 }
                    for block in 0..<blocks {
                        let source = storage + (group * blocks + block) * groupBlock
                        let activation = activationRow + block * 34
                        let quants = (activation + 2).assumingMemoryBound(to: Int8.self)
                        let weights = (source + 64).assumingMemoryBound(to: Int8.self)
                        let activationScale = loadHalf(activation, 0)
                        let halves = source.assumingMemoryBound(to: Float16.self)
                        for lane in 0..<lanes { scales[lane] = Float(halves[lane]) * activationScale }
                        for j in 0..<32 { quantFloats[j] = Float(quants[j]) }
                        for part in 0..<8 {
                            let j = 4 * part
                            let a0 = quantFloats[j], a1 = quantFloats[j + 1], a2 = quantFloats[j + 2], a3 = quantFloats[j + 3]
                            let row0 = weights + j * lanes, row1 = row0 + lanes, row2 = row1 + lanes, row3 = row2 + lanes
                            let accumulator = accumulators + part * lanes
                            // The part's integer sum of four products, in float: every product
                            // (≤ 127 · 128) and partial sum is an exact integer, so this is the
                            // same number as the Int32 sum, with multiply-adds instead of 32-bit
                            // integer multiplies.
                            for lane in 0..<lanes {
                                var sum = Float(row0[lane]) * a0
                                sum.addProduct(Float(row1[lane]), a1)
                                sum.addProduct(Float(row2[lane]), a2)
                                sum.addProduct(Float(row3[lane]), a3)
                                accumulator[lane].addProduct(scales[lane], sum)
                            }
                        }
                    }
                    let destination = output + token * rows + group * lanes
                    let a = accumulators
                    for lane in 0..<lanes {
                        let low = (a[lane] + a[4 * lanes + lane]) + (a[2 * lanes + lane] + a[6 * lanes + lane])
                        let high = (a[lanes + lane] + a[5 * lanes + lane]) + (a[3 * lanes + lane] + a[7 * lanes + lane])
                        destination[lane] = low + high
                    }
                }
            }
        }
    }

    /// `output[t * rows + r]` for weights in Q8_0's layout (Q8_0 without `llamaOrder`, or Q5_0
    /// decoded to signed bytes) and Q8_0 activations: one integer sum per block, one running float
    /// sum (`multiplyTiled` gives the same bits for Q5_0).
    func multiplyBlockSums(groups groupRange: Range<Int>, activations: UnsafeRawPointer, activationRowBytes: Int, tokens: Int,
                           firstToken: Int = 0, output: UnsafeMutablePointer<Float>) {
        let blocks = columns / 32
        let groupBlock = Self.q8_0GroupBlockBytes
        for group in groupRange {
            for token in firstToken..<tokens {
                let activationRow = activations + token * activationRowBytes
                // Rows 0..<16 and 16..<32 of the group, one lane each.
                var low = SIMD16<Float>(), high = SIMD16<Float>()
                for block in 0..<blocks {
                    let source = storage + (group * blocks + block) * groupBlock
                    let activation = activationRow + block * 34
                    let quants = (activation + 2).assumingMemoryBound(to: Int8.self)
                    let weights = source + 64
                    var integerLow = SIMD16<Int32>(), integerHigh = SIMD16<Int32>()
                    // Two products (each at most 128 · 127 in magnitude) fit in 16 bits before widening.
                    for j in stride(from: 0, to: 32, by: 2) {
                        let first = SIMD32<Int16>(repeating: Int16(quants[j]))
                        let second = SIMD32<Int16>(repeating: Int16(quants[j + 1]))
                        let pair = Widening.signedBytes(weights + j * 32) &* first &+ Widening.signedBytes(weights + j * 32 + 32) &* second
                        let (pairLow, pairHigh) = Widening.words(pair)
                        integerLow &+= pairLow
                        integerHigh &+= pairHigh
                    }
                    let activationScale = loadHalf(activation, 0)
                    low += Widening.floats(integerLow) * (Widening.halves(source) * activationScale)
                    high += Widening.floats(integerHigh) * (Widening.halves(source + 32) * activationScale)
                }
                let destination = UnsafeMutableRawPointer(output + token * rows + group * Self.rowGroup)
                destination.storeBytes(of: low, as: SIMD16<Float>.self)
                destination.storeBytes(of: high, toByteOffset: 64, as: SIMD16<Float>.self)
            }
        }
    }
}

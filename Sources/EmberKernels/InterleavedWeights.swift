import CIntegerKernels
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
/// - Q4_1: 32 `d` halves,
///   32 `m` halves, then for j in 0..<16 the 32 rows' packed byte j (low nibble = element j,
///   high nibble = element j + 16). Same bytes as the file for Q4_1.
/// - Q8_0 (and Q5_0, decoded to signed bytes, 55 % larger than the file): 32 `d` halves, then for
///   j in 0..<32 the 32 rows' byte j.
/// - Q4_K, per 256 elements (3 % larger than the file): see `interleaveQ4_K`.
/// - Q6_K, per 256 elements (the same size as the file): see `interleaveQ6_K`.
///
/// `@unchecked Sendable`: the buffer is written once in `init` and only read afterwards.
public final class InterleavedWeights: @unchecked Sendable {
    public static let rowGroup = 32
    /// Elements of the blocks the layouts interleave (a 256-element super-block is eight of them).
    static let blockElements = 32
    public let type: TensorType
    /// For Q8_0: add up in llama.cpp's order (eight partial sums a row, `multiplyQ8_0`), which makes
    /// a model whose every matrix has such a kernel give llama.cpp's logits bit for bit; false
    /// keeps one integer sum per block (`multiplyBlockSums`), about a third faster, for models
    /// that cannot match llama.cpp's bits anyway (Q4_K, Q4_1, Q5_0, Q6_K matrices beside it).
    public let llamaOrder: Bool
    public let rows: Int
    public let columns: Int
    let storage: UnsafeMutableRawPointer
    public let byteCount: Int
    /// The product over this layout, resolved from the format's row when the weights were rearranged.
    let multiply: Multiply
    /// One token's product over a range of groups (what `multiply` does for one token), so that
    /// several matrices of the same input share one dispatch (`Kernels.matmulOneToken`).
    let oneToken: OneToken

    /// Bytes of one group's block in Q4_1's layout (`Q4_1GroupBlock`).
    static let q4_1GroupBlockBytes = Q4_1GroupBlock.bytes
    /// Bytes of one group's block in Q8_0's layout (`Q8_0GroupBlock`).
    static let q8_0GroupBlockBytes = Q8_0GroupBlock.bytes

    /// Where a rearrangement reads and writes: the file's rows and the interleaved storage.
    struct Rearrangement {
        let data: UnsafeRawPointer
        let rowBytes: Int
        let columns: Int
        let storage: UnsafeMutableRawPointer
        let groupBlockBytes: Int
    }

    /// Writes groups (of `rowGroup` rows) of the file's layout into a format's interleaved layout.
    typealias Rearrange = @Sendable (_ source: Rearrangement, _ groups: Range<Int>) -> Void

    /// One product of interleaved weights with activations quantized into `scratch`: what every
    /// interleaved kernel reads.
    struct Product {
        let activations: UnsafeRawPointer
        let activationRowBytes: Int
        let tokens: Int
        let output: UnsafeMutablePointer<Float>
        let scratch: UnsafeMutableRawPointer
        let pool: ThreadPool
        let promptKernel: PromptKernel
    }

    /// The product over one layout (`Interleaving.multiply`).
    typealias Multiply = @Sendable (_ weights: InterleavedWeights, _ product: Product) -> Void

    /// Whether `type` and `rows` can be interleaved.
    public static func supports(_ type: TensorType, rows: Int, columns: Int) -> Bool {
        QuantizedFormat.format(type)?.interleaving != nil && rows % rowGroup == 0 && columns % type.blockSize == 0
    }

    /// Rearranges a row-major matrix of `type` into its format's interleaved layout; nil when the
    /// layout is not supported.
    ///
    /// Works in chunks of rows and calls `release` with each chunk's source bytes once copied, so
    /// the caller can drop them from memory and the peak stays near one copy.
    public init?(type: TensorType, data: UnsafeRawPointer, rows: Int, columns: Int, pool: ThreadPool? = nil,
                 llamaOrder: Bool = true, release: (UnsafeRawPointer, Int) -> Void = { _, _ in }) {
        guard Self.supports(type, rows: rows, columns: columns), let interleaving = QuantizedFormat.format(type)?.interleaving else { return nil }
        self.llamaOrder = llamaOrder
        self.type = type
        self.rows = rows
        self.columns = columns
        multiply = interleaving.multiply(llamaOrder)
        oneToken = interleaving.oneToken(llamaOrder)
        let groupBlock = interleaving.groupBlockBytes
        byteCount = rows / Self.rowGroup * (columns / Self.blockElements) * groupBlock
        storage = .allocate(byteCount: byteCount, alignment: 64)
        let rowBytes = type.byteCount(elements: columns)!
        let source = Rearrangement(data: data, rowBytes: rowBytes, columns: columns, storage: storage, groupBlockBytes: groupBlock)
        let rearrange = interleaving.rearrange
        Self.run({ range, _ in rearrange(source, range) }, groups: rows / Self.rowGroup, rowBytes: rowBytes, data: data, pool: pool,
                 release: release)
    }

    /// Q4_1: the rows' `d` and `m` halves and packed bytes, block by block (the file's bytes).
    static let copyQ4_1: Rearrange = { source, groups in
        copyBlocks(source, groups: groups, blockBytes: Q4_1Block.bytes, minimum: Q4_1Block.minimum, quants: Q4_1Block.quants,
                   quantBytes: Q4_1Block.bytes - Q4_1Block.quants, quantStart: Q4_1GroupBlock.quants)
    }

    /// Q8_0: the rows' `d` halves and quant bytes, block by block (the file's bytes).
    static let copyQ8_0: Rearrange = { source, groups in
        copyBlocks(source, groups: groups, blockBytes: Q8_0Block.bytes, minimum: nil, quants: Q8_0Block.quants,
                   quantBytes: Q8_0Block.bytes - Q8_0Block.quants, quantStart: Q8_0GroupBlock.quants)
    }

    /// Blocks of `blockBytes` that start with a `d` half (and an `m` half at `minimum`), their
    /// `quantBytes` bytes from `quants` on written byte j of every row together from `quantStart`.
    private static func copyBlocks(_ source: Rearrangement, groups range: Range<Int>, blockBytes: Int, minimum: Int?, quants quantOffset: Int,
                                   quantBytes: Int, quantStart: Int) {
        let lanes = Self.rowGroup, rowBytes = source.rowBytes
        let blocks = source.columns / Self.blockElements
        for group in range {
            let groupRows = source.data + group * lanes * rowBytes
            for block in 0..<blocks {
                let destination = source.storage + (group * blocks + block) * source.groupBlockBytes
                let sources = groupRows + block * blockBytes
                let scales = destination.assumingMemoryBound(to: UInt16.self)
                for lane in 0..<lanes {
                    scales[lane] = sources.loadUnaligned(fromByteOffset: lane * rowBytes, as: UInt16.self)
                }
                if let minimum {
                    for lane in 0..<lanes {
                        scales[lanes + lane] = sources.loadUnaligned(fromByteOffset: lane * rowBytes + minimum, as: UInt16.self)
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

    /// Q5_0 decoded to signed bytes (q − 16) in Q8_0's layout: 55 % more bytes than the file, but
    /// the kernel then skips the per-token extraction of the fifth bit, which costs more than the
    /// extra bandwidth on these small matrices.
    static let decodeQ5_0: Rearrange = { source, range in
        let lanes = InterleavedWeights.rowGroup
        let blocks = source.columns / InterleavedWeights.blockElements
        for group in range {
            for block in 0..<blocks {
                let destination = source.storage + (group * blocks + block) * source.groupBlockBytes
                for lane in 0..<lanes {
                    let row = source.data + (group * lanes + lane) * source.rowBytes + block * Q5_0Block.bytes
                    destination.storeBytes(of: row.loadUnaligned(fromByteOffset: Q5_0Block.scale, as: UInt16.self),
                                           toByteOffset: Q8_0GroupBlock.scales + 2 * lane, as: UInt16.self)
                    let high = row.loadUnaligned(fromByteOffset: Q5_0Block.highBits, as: UInt32.self)
                    for j in 0..<16 {
                        let byte = row.load(fromByteOffset: Q5_0Block.quants + j, as: UInt8.self)
                        let q0 = Int8(byte & 0x0F | UInt8((high >> UInt32(j)) & 1) << 4) - 16
                        let q1 = Int8(byte >> 4 | UInt8((high >> UInt32(j + 16)) & 1) << 4) - 16
                        destination.storeBytes(of: q0, toByteOffset: Q8_0GroupBlock.quants + j * lanes + lane, as: Int8.self)
                        destination.storeBytes(of: q1, toByteOffset: Q8_0GroupBlock.quants + (j + 16) * lanes + lane, as: Int8.self)
                    }
                }
            }
        }
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

    // MARK: Products over the layouts

    /// A one-token kernel over groups of rows of Q4_1's or Q8_0's layout, for tokens `firstToken ..< tokens`
    /// of `activations` (rows of `activationRowBytes`).
    typealias TokenRows = @Sendable (_ weights: InterleavedWeights, _ groups: Range<Int>, _ activations: UnsafeRawPointer,
                                     _ activationRowBytes: Int, _ tokens: Int, _ firstToken: Int,
                                     _ output: UnsafeMutablePointer<Float>) -> Void

    static let rowsQ4_1: TokenRows = { weights, groups, activations, activationRowBytes, tokens, firstToken, output in
        weights.multiplyQ4_1(groups: groups, activations: activations, activationRowBytes: activationRowBytes, tokens: tokens,
                             firstToken: firstToken, output: output)
    }

    static let rowsQ8_0InLlamaOrder: TokenRows = { weights, groups, activations, activationRowBytes, tokens, firstToken, output in
        weights.multiplyQ8_0(groups: groups, activations: activations, activationRowBytes: activationRowBytes, tokens: tokens,
                             firstToken: firstToken, output: output)
    }

    static let rowsBlockSums: TokenRows = { weights, groups, activations, activationRowBytes, tokens, firstToken, output in
        weights.multiplyBlockSums(groups: groups, activations: activations, activationRowBytes: activationRowBytes, tokens: tokens,
                                  firstToken: firstToken, output: output)
    }

    /// One token's product over `groups`, from its activations (quantized for `type`) into
    /// `output` (the token's row of outputs), with thread `thread`'s pool workspace.
    typealias OneToken = @Sendable (_ weights: InterleavedWeights, _ groups: Range<Int>, _ activations: UnsafeRawPointer,
                                    _ output: UnsafeMutablePointer<Float>, _ promptKernel: PromptKernel,
                                    _ workspace: UnsafeMutableRawPointer) -> Void

    /// One token over Q4_1's or Q8_0's layout: the C kernel of `integerRows` when the AVX-512 VNNI
    /// kernels are chosen and the CPU has byte permutes, else `tokenRows` (the same bits).
    static func oneTokenOfSmallWeights(_ tokenRows: @escaping TokenRows, integerRows: IntegerRows?) -> OneToken {
        { weights, groups, activations, output, promptKernel, workspace in
            let blocks = weights.columns / blockElements
            if let integerRows, promptKernel == .avx512VNNI, hasIntegerRowKernel,
               blocks * MemoryLayout<Int32>.size <= ThreadPool.workspaceBytes {
                integer_kernels_one_token_avx512_vnni(weights.storage, Int64(blocks), integerRows.rawValue, activations,
                                                      Int64(groups.lowerBound), Int64(groups.upperBound), output, workspace)
            } else {
                tokenRows(weights, groups, activations, 0, 1, 0, output)
            }
        }
    }

    /// One token over Q6_K's layout.
    static let oneTokenQ6_K: OneToken = { weights, groups, activations, output, _, _ in
        weights.multiplyQ6_KOneToken(groups: groups, activations: activations, output: output)
    }

    /// The layouts the C one-token kernel (`integer_kernels_one_token_avx512_vnni`) multiplies.
    enum IntegerRows: Int32, Sendable {
        /// Q4_1's layout with Q8_1 activations (`multiplyQ4_1`).
        case q4_1 = 1
        /// Q8_0's layout with Q8_0 activations, one integer sum per block (`multiplyBlockSums`).
        case q8_0BlockSums = 0
    }

    /// Whether this CPU runs the C one-token kernel: AVX-512 VNNI, BW and VBMI (byte permutes).
    static let hasIntegerRowKernel = integer_kernels_cpu_has_one_token_avx512() != 0

    /// The product over Q4_1's or Q8_0's layout: large batches of small weights with tokens in the
    /// vector lanes, other batches through the tiled kernel, the last tokens one by one with
    /// `oneToken` (bit-identical sums every way).
    static func smallWeights(_ oneToken: @escaping OneToken) -> Multiply {
        { weights, product in
            let columns = weights.columns, tokens = product.tokens, pool = product.pool, scratch = product.scratch
            let groups = weights.rows / rowGroup
            if tokens >= tokenLaneMinimum && weights.supportsTiles {
                let promptKernel = product.promptKernel
                precondition(promptKernel.isAvailable, "this CPU cannot run the \(promptKernel.rawValue) kernels")
                let lanes = scratch + Kernels.laneScratchOffset(product.activationRowBytes * tokens)
                let blocks = columns / blockElements
                // The C kernel unpacks a group's weights into the thread's workspace: wider matrices
                // than it holds (over 4,800 columns) take the Swift kernel.
                let vectorNeuralNetwork = promptKernel == .avx512VNNI
                    && blocks <= Int(integer_kernels_token_lanes_max_blocks(Int64(ThreadPool.workspaceBytes)))
                pool.parallelFor((tokens + 31) / 32) { range, _ in
                    weights.transposeActivations(product.activations, activationRowBytes: product.activationRowBytes, tokens: tokens,
                                                 vectors: range, quads: vectorNeuralNetwork, into: lanes)
                }
                if vectorNeuralNetwork {
                    let hasMinimum: Int32 = weights.type == .q4_1 ? 1 : 0
                    pool.parallelFor(groups) { range, thread in
                        integer_kernels_token_lanes_avx512_vnni(weights.storage, Int64(blocks), hasMinimum, lanes, Int64(tokens),
                                                                Int64(range.lowerBound), Int64(range.upperBound), product.output,
                                                                Int64(weights.rows), pool.workspace(thread))
                    }
                    return
                }
                pool.parallelFor(groups) { range, thread in
                    weights.multiplyTokenLanes(groups: range, lanes: UnsafeRawPointer(lanes), tokens: tokens, output: product.output,
                                               workspace: pool.workspace(thread))
                }
                return
            }
            let tiled = weights.supportsTiles ? tokens / tokenTile * tokenTile : 0
            // Eight chunks a thread, claimed as threads free up (`parallelFor(_:grain:_:)`).
            pool.parallelFor(groups, grain: max(1, groups / (8 * pool.threadCount))) { range, thread in
                if tiled > 0 {
                    weights.multiplyTiled(groups: range, activations: product.activations, activationRowBytes: product.activationRowBytes,
                                          tokens: tiled, output: product.output)
                }
                for token in tiled..<tokens {
                    oneToken(weights, range, product.activations + token * product.activationRowBytes, product.output + token * weights.rows,
                             product.promptKernel, pool.workspace(thread))
                }
            }
        }
    }

    /// The product over Q6_K's layout: tokens in the lanes with AVX-512 VNNI (four-byte dot
    /// products, CIntegerKernels), the tiled Swift kernel for batches and one token alike otherwise
    /// (bit-identical to the row kernel).
    static let multiplyQ6_KLayout: Multiply = { weights, product in
        if multiplySuperBlockTokenLanes(weights, product, maximumSuperBlocks: integer_kernels_q6k_max_super_blocks,
                                        kernel: integer_kernels_q6k_token_lanes_avx512_vnni) {
            return
        }
        let tokens = product.tokens, pool = product.pool
        pool.parallelFor(weights.rows / rowGroup) { range, _ in
            weights.multiplyQ6_K(groups: range, activations: product.activations, activationRowBytes: product.activationRowBytes,
                                 tokens: tokens, output: product.output)
        }
    }

    /// Q6_K rows in groups (`interleaveQ6_K`).
    static let rearrangeQ6_K: Rearrange = { source, groups in
        interleaveQ6_K(source.data, rowBytes: source.rowBytes, superBlocks: source.columns / TensorType.q6_K.blockSize,
                       groups: groups, into: source.storage)
    }

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
                    let (integerLow, integerHigh) = Self.nibbleBlockSums(packed, quants)
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

    /// The integer sums of one 32-element block of 32 rows' packed nibbles (byte j of the rows at
    /// `packed + j * 32`: element j low, j + 16 high) with 32 activation quants: rows 0..<16 and
    /// 16..<32. Eight byte positions at a time: 8 × 2 products of at most 15 · 128 fit in 16 bits.
    @inline(__always)
    static func nibbleBlockSums(_ packed: UnsafeRawPointer, _ quants: UnsafePointer<Int8>) -> (low: SIMD16<Int32>, high: SIMD16<Int32>) {
        var low = SIMD16<Int32>(), high = SIMD16<Int32>()
        for half in 0..<2 {
            var partial = SIMD32<Int16>()
            for j in (half * 8)..<(half * 8 + 8) {
                let (first, second) = Widening.nibbles(packed + j * 32)
                partial &+= first &* SIMD32<Int16>(repeating: Int16(quants[j])) &+ second &* SIMD32<Int16>(repeating: Int16(quants[j + 16]))
            }
            let (partialLow, partialHigh) = Widening.words(partial)
            low &+= partialLow
            high &+= partialHigh
        }
        return (low, high)
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

import CIntegerKernels
import CPrefetch
import EmberCore

/// Q4_K weights interleaved by 32 rows, 3 % larger than the file, and the kernels over them.
///
/// The weights keep Q4_K's own numbers — `d`, `dmin`, the 6-bit scale and minimum of each 32-element
/// sub-block and the 4-bit quants — so products with Q8_K activations are llama.cpp's: the exact
/// integer sums of `VectorKernels.dotQ4_K` per super-block, then its two running fused
/// multiply-adds and one subtraction. (Rewriting Q4_K as Q4_1 with Q8_1 activations, as Ember did
/// before, rounds the weights' scales to half precision and the activations per 32 elements, and
/// was the first place Gemma 3's logits left llama.cpp's.)
///
/// Layout, per group of 32 rows and per 256-element super-block (`Q4_KGroupSuperBlock`):
/// the 32 rows' `d` halves, their `dmin` halves, for each sub-block s in 0..<8 the 32 rows' scale
/// bytes, then the same for the minimums, then per sub-block (512 bytes) for j in 0..<16 the 32
/// rows' byte (element j) | (element j + 16) << 4, as in Q4_1's interleaved block.
extension InterleavedWeights {
    /// Rearranges groups `range` of Q4_K rows into `Q4_KGroupSuperBlock`s.
    static let interleaveQ4_K: Rearrange = { source, range in
        let lanes = rowGroup
        let superBlocks = source.columns / TensorType.q4_K.blockSize
        for group in range {
            for superBlock in 0..<superBlocks {
                let destination = source.storage + (group * superBlocks + superBlock) * Q4_KGroupSuperBlock.bytes
                for lane in 0..<lanes {
                    let row = source.data + (group * lanes + lane) * source.rowBytes + superBlock * Q4_KBlock.bytes
                    destination.storeBytes(of: row.loadUnaligned(fromByteOffset: Q4_KBlock.scale, as: UInt16.self),
                                           toByteOffset: Q4_KGroupSuperBlock.scales + 2 * lane, as: UInt16.self)
                    destination.storeBytes(of: row.loadUnaligned(fromByteOffset: Q4_KBlock.minimumScale, as: UInt16.self),
                                           toByteOffset: Q4_KGroupSuperBlock.minimumScales + 2 * lane, as: UInt16.self)
                    for sub in 0..<8 {
                        let (scale, minimum) = ReferenceKernels.scaleAndMinK4(sub, row + Q4_KBlock.scales)
                        destination.storeBytes(of: scale, toByteOffset: Q4_KGroupSuperBlock.subBlockScales + sub * lanes + lane, as: UInt8.self)
                        destination.storeBytes(of: minimum, toByteOffset: Q4_KGroupSuperBlock.subBlockMinimums + sub * lanes + lane, as: UInt8.self)
                        // Sub-block `sub` is the low (even) or high (odd) nibbles of bytes 32·(sub/2) ..< +32.
                        let quants = row + Q4_KBlock.quants + (sub / 2) * 32
                        let shift: UInt8 = sub % 2 == 0 ? 0 : 4
                        let out = destination + Q4_KGroupSuperBlock.quants + sub * Q4_KGroupSuperBlock.subBlockQuantBytes
                        for j in 0..<16 {
                            let first = (quants.load(fromByteOffset: j, as: UInt8.self) >> shift) & 0x0F
                            let second = (quants.load(fromByteOffset: j + 16, as: UInt8.self) >> shift) & 0x0F
                            out.storeBytes(of: first | (second << 4), toByteOffset: j * lanes + lane, as: UInt8.self)
                        }
                    }
                }
            }
        }
    }

    /// The product over Q4_K's layout: batches of `tokenLaneMinimum` tokens or more in 16-token
    /// vectors with AVX-512 VNNI (`integer_kernels_q4k_token_lanes_avx512_vnni`), other batches
    /// four tokens at a time (`multiplyQ4_KTiled`) and the last tokens one at a time
    /// (`oneTokenQ4_K`); the same bits every way.
    static let multiplyQ4_KLayout: Multiply = { weights, product in
        if multiplySuperBlockTokenLanes(weights, product, maximumSuperBlocks: integer_kernels_q4k_max_super_blocks,
                                        kernel: integer_kernels_q4k_token_lanes_avx512_vnni) {
            return
        }
        let tokens = product.tokens, pool = product.pool
        let groups = weights.rows / rowGroup
        let tiled = tokens / tokenTile * tokenTile
        pool.parallelFor(groups, grain: max(1, groups / (8 * pool.threadCount))) { range, thread in
            if tiled > 0 {
                weights.multiplyQ4_KTiled(groups: range, activations: product.activations, activationRowBytes: product.activationRowBytes,
                                          tokens: tiled, output: product.output)
            }
            for token in tiled..<tokens {
                oneTokenQ4_K(weights, range, product.activations + token * product.activationRowBytes, product.output + token * weights.rows,
                             product.promptKernel, pool.workspace(thread))
            }
        }
    }

    /// One token over Q4_K's layout: the C kernel when the AVX-512 VNNI kernels are chosen and the
    /// CPU has byte permutes, else the portable `multiplyQ4_KOneToken` (the same bits).
    static let oneTokenQ4_K: OneToken = { weights, groups, activations, output, promptKernel, _ in
        if promptKernel == .avx512VNNI, hasIntegerRowKernel {
            integer_kernels_q4k_one_token_avx512_vnni(weights.storage, Int64(weights.columns / TensorType.q4_K.blockSize), activations,
                                                      Int64(groups.lowerBound), Int64(groups.upperBound), output)
        } else {
            weights.multiplyQ4_KOneToken(groups: groups, activations: activations, output: output)
        }
    }

    /// One token's outputs `output[g * 32 + r]` for groups `groupRange`, from a Q8_K activation
    /// row: per row and super-block the integer sums of `VectorKernels.dotQ4_K`, then
    /// `sum += isum · (d · d_a)` and `minimums += minimumSum · (dmin · d_a)` as fused
    /// multiply-adds, and `sum − minimums` at the end.
    func multiplyQ4_KOneToken(groups groupRange: Range<Int>, activations: UnsafeRawPointer, output: UnsafeMutablePointer<Float>) {
        let superBlocks = columns / TensorType.q4_K.blockSize
        for group in groupRange {
            // Rows 0..<16 and 16..<32 of the group, one lane each.
            var sumLow = SIMD16<Float>(), sumHigh = SIMD16<Float>()
            var minimumLow = SIMD16<Float>(), minimumHigh = SIMD16<Float>()
            for superBlock in 0..<superBlocks {
                let source = storage + (group * superBlocks + superBlock) * Q4_KGroupSuperBlock.bytes
                let activation = activations + superBlock * Q8_KBlock.bytes
                let blockSums = (activation + Q8_KBlock.sums).assumingMemoryBound(to: Int16.self)
                var integerLow = SIMD16<Int32>(), integerHigh = SIMD16<Int32>()
                var minimumSumLow = SIMD16<Int32>(), minimumSumHigh = SIMD16<Int32>()
                for sub in 0..<8 {
                    let quants = (activation + Q8_KBlock.quants + sub * 32).assumingMemoryBound(to: Int8.self)
                    let packed = source + Q4_KGroupSuperBlock.quants + sub * Q4_KGroupSuperBlock.subBlockQuantBytes
                    ember_prefetch(packed + 4096)
                    let (subLow, subHigh) = Self.nibbleBlockSums(packed, quants)
                    let scales = source + Q4_KGroupSuperBlock.subBlockScales + sub * 32
                    integerLow &+= subLow &* Widening.unsignedBytes32(scales)
                    integerHigh &+= subHigh &* Widening.unsignedBytes32(scales + 16)
                    let blockSum = SIMD16<Int32>(repeating: Int32(blockSums[2 * sub]) &+ Int32(blockSums[2 * sub + 1]))
                    let minimums = source + Q4_KGroupSuperBlock.subBlockMinimums + sub * 32
                    minimumSumLow &+= Widening.unsignedBytes32(minimums) &* blockSum
                    minimumSumHigh &+= Widening.unsignedBytes32(minimums + 16) &* blockSum
                }
                let scale = activation.loadUnaligned(fromByteOffset: Q8_KBlock.scale, as: Float.self)
                sumLow.addProduct(Widening.floats(integerLow), Widening.halves(source + Q4_KGroupSuperBlock.scales) * scale)
                sumHigh.addProduct(Widening.floats(integerHigh), Widening.halves(source + Q4_KGroupSuperBlock.scales + 32) * scale)
                minimumLow.addProduct(Widening.floats(minimumSumLow), Widening.halves(source + Q4_KGroupSuperBlock.minimumScales) * scale)
                minimumHigh.addProduct(Widening.floats(minimumSumHigh),
                                       Widening.halves(source + Q4_KGroupSuperBlock.minimumScales + 32) * scale)
            }
            let destination = UnsafeMutableRawPointer(output + group * Self.rowGroup)
            destination.storeBytes(of: sumLow - minimumLow, as: SIMD16<Float>.self)
            destination.storeBytes(of: sumHigh - minimumHigh, toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// `output[t * rows + r]` for groups `groupRange` and tokens `0..<tokens` (a multiple of
    /// `tokenTile`), as `multiplyQ4_KOneToken` computes them: each sub-block's 32 × 32 nibbles
    /// widened to Int16 once for up to 16 tokens (`tileSums`: sixteen products of 15 · 128 fit).
    func multiplyQ4_KTiled(groups groupRange: Range<Int>, activations: UnsafeRawPointer, activationRowBytes: Int, tokens: Int,
                           output: UnsafeMutablePointer<Float>) {
        precondition(tokens % Self.tokenTile == 0)
        let superBlocks = columns / TensorType.q4_K.blockSize
        let lanes = Self.rowGroup, superTile = Self.tokenSuperTile
        withUnsafeTemporaryAllocation(byteCount: 16384, alignment: 64) { buffer in
            let base = buffer.baseAddress!
            let wide = base.assumingMemoryBound(to: Int16.self)                     // 32 × 32 Int16: 2048 bytes
            let widened = (base + 2048).assumingMemoryBound(to: Int16.self)        // 16 × 32 Int16: 1024
            let partials = (base + 3072).assumingMemoryBound(to: Int16.self)       // 4 × 32 Int16: 256
            let sums = (base + 3328).assumingMemoryBound(to: Int32.self)           // 4 × 32 Int32: 512
            let integers = (base + 3840).assumingMemoryBound(to: Int32.self)       // 16 × 32 Int32: 2048
            let minimumSums = (base + 5888).assumingMemoryBound(to: Int32.self)    // 16 × 32 Int32: 2048
            let accumulators = (base + 7936).assumingMemoryBound(to: Float.self)   // 16 × 32 Float: 2048
            let minimums = (base + 9984).assumingMemoryBound(to: Float.self)       // 16 × 32 Float: 2048 (ends 12032)
            for group in groupRange {
                var first = 0
                while first < tokens {
                    let count = min(superTile, tokens - first)
                    for i in 0..<(count * lanes) {
                        accumulators[i] = 0
                        minimums[i] = 0
                    }
                    for superBlock in 0..<superBlocks {
                        let source = storage + (group * superBlocks + superBlock) * Q4_KGroupSuperBlock.bytes
                        for i in 0..<(count * lanes) {
                            integers[i] = 0
                            minimumSums[i] = 0
                        }
                        for sub in 0..<8 {
                            Self.widenNibbles(source + Q4_KGroupSuperBlock.quants + sub * Q4_KGroupSuperBlock.subBlockQuantBytes, into: wide)
                            let scales = (source + Q4_KGroupSuperBlock.subBlockScales + sub * lanes).assumingMemoryBound(to: UInt8.self)
                            let minimumValues = (source + Q4_KGroupSuperBlock.subBlockMinimums + sub * lanes).assumingMemoryBound(to: UInt8.self)
                            for t in 0..<count {
                                let activation = activations + (first + t) * activationRowBytes + superBlock * Q8_KBlock.bytes
                                let quants = (activation + Q8_KBlock.quants + sub * 32).assumingMemoryBound(to: Int8.self)
                                for k in 0..<32 { widened[t * 32 + k] = Int16(quants[k]) }
                                let blockSums = (activation + Q8_KBlock.sums).assumingMemoryBound(to: Int16.self)
                                let blockSum = Int32(blockSums[2 * sub]) &+ Int32(blockSums[2 * sub + 1])
                                let minimumSum = minimumSums + t * lanes
                                for lane in 0..<lanes { minimumSum[lane] &+= Int32(minimumValues[lane]) &* blockSum }
                            }
                            var tile = 0
                            while tile < count {
                                Self.tileSums(wide: wide, activations: widened + tile * 32, partials: partials, sums: sums)
                                for t in 0..<Self.tokenTile {
                                    let integer = integers + (tile + t) * lanes, sum = sums + t * lanes
                                    for lane in 0..<lanes { integer[lane] &+= sum[lane] &* Int32(scales[lane]) }
                                }
                                tile += Self.tokenTile
                            }
                        }
                        let d = (source + Q4_KGroupSuperBlock.scales).assumingMemoryBound(to: Float16.self)
                        let dmin = (source + Q4_KGroupSuperBlock.minimumScales).assumingMemoryBound(to: Float16.self)
                        for t in 0..<count {
                            let scale = (activations + (first + t) * activationRowBytes + superBlock * Q8_KBlock.bytes)
                                .loadUnaligned(fromByteOffset: Q8_KBlock.scale, as: Float.self)
                            let accumulator = accumulators + t * lanes, minimum = minimums + t * lanes
                            let integer = integers + t * lanes, minimumSum = minimumSums + t * lanes
                            for lane in 0..<lanes {
                                accumulator[lane].addProduct(Float(integer[lane]), Float(d[lane]) * scale)
                                minimum[lane].addProduct(Float(minimumSum[lane]), Float(dmin[lane]) * scale)
                            }
                        }
                    }
                    for t in 0..<count {
                        let destination = output + (first + t) * rows + group * lanes
                        for lane in 0..<lanes { destination[lane] = accumulators[t * lanes + lane] - minimums[t * lanes + lane] }
                    }
                    first += count
                }
            }
        }
    }

    /// The C kernel of a super-block layout over 16-token vectors (`integer_kernels_q4k_token_lanes_avx512_vnni`,
    /// `integer_kernels_q6k_token_lanes_avx512_vnni`): weights, super-blocks, token vectors, tokens,
    /// first and end group, output, rows, workspace.
    typealias SuperBlockLaneKernel = (UnsafeRawPointer?, Int64, UnsafeRawPointer?, Int64, Int64, Int64, UnsafeMutablePointer<Float>?,
                                      Int64, UnsafeMutableRawPointer?) -> Void

    /// A batch of `tokenLaneMinimum` tokens or more over a super-block layout with AVX-512 VNNI:
    /// the Q8_K activations transposed into 16-token vectors, then `kernel` over every group.
    /// False, having done nothing, when the batch is smaller, another kernel is chosen, or the
    /// matrix is wider than `maximumSuperBlocks` allows in a thread's workspace.
    static func multiplySuperBlockTokenLanes(_ weights: InterleavedWeights, _ product: Product, maximumSuperBlocks: (Int64) -> Int64,
                                             kernel: SuperBlockLaneKernel) -> Bool {
        let tokens = product.tokens, pool = product.pool, scratch = product.scratch
        let superBlocks = weights.columns / TensorType.q8_K.blockSize
        guard tokens >= tokenLaneMinimum, product.promptKernel == .avx512VNNI,
              superBlocks <= Int(maximumSuperBlocks(Int64(ThreadPool.workspaceBytes))) else { return false }
        let lanes = scratch + Kernels.laneScratchOffset(product.activationRowBytes * tokens)
        pool.parallelFor((tokens + 15) / 16) { range, _ in
            integer_kernels_q6k_transpose_activations(scratch, Int64(product.activationRowBytes), Int64(superBlocks), Int64(tokens),
                                                      Int64(range.lowerBound), Int64(range.upperBound), lanes)
        }
        pool.parallelFor(weights.rows / rowGroup) { range, thread in
            kernel(weights.storage, Int64(superBlocks), lanes, Int64(tokens), Int64(range.lowerBound), Int64(range.upperBound), product.output,
                   Int64(weights.rows), pool.workspace(thread))
        }
        return true
    }

    /// Scratch for batches over the super-block layouts (Q4_K, Q6_K): on AVX-512 VNNI the Q8_K
    /// activations are transposed into 16-token vectors (0 otherwise).
    static func superBlockLaneScratchBytes(columns: Int, tokens: Int) -> Int {
        guard PromptKernel.detected == .avx512VNNI, tokens >= tokenLaneMinimum else { return 0 }
        return (tokens + 15) / 16 * (columns / TensorType.q8_K.blockSize) * Int(EMBER_Q6K_LANE_BLOCK_BYTES)
    }
}

/// Q4_K's interleaved super-block (`InterleavedWeights.interleaveQ4_K`): 32 rows of one
/// 256-element super-block, 4,736 bytes against the file's 32 × 144.
enum Q4_KGroupSuperBlock {
    static let scales = 0
    static let minimumScales = scales + InterleavedWeights.rowGroup * 2
    /// Per sub-block, the rows' 6-bit scales as bytes.
    static let subBlockScales = minimumScales + InterleavedWeights.rowGroup * 2
    /// Per sub-block, the rows' 6-bit minimums as bytes.
    static let subBlockMinimums = subBlockScales + 8 * InterleavedWeights.rowGroup
    static let quants = subBlockMinimums + 8 * InterleavedWeights.rowGroup
    /// One sub-block's packed quants of the 32 rows (16 bytes a row, as `Q4_1GroupBlock`'s).
    static let subBlockQuantBytes = 16 * InterleavedWeights.rowGroup
    static let bytes = quants + 8 * subBlockQuantBytes
}

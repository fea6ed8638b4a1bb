/// Prompt processing over interleaved weights: several tokens per pass over a block.
///
/// The one-token kernels (`multiplyQ4_1`, `multiplyDecodedQ5_0`) extract and widen every weight byte once
/// per token. For a batch, this kernel widens a group's block of 32 × 32 weights to Int16 once and
/// multiplies it by four tokens at a time, each token's running sums in a vector register, so the
/// per-product work is one multiply and one add. Weights must be small (|w| ≤ 16: Q4_1 nibbles,
/// Q5_0 decoded to signed bytes; Q4_K's nibbles in `multiplyQ4_KTiled`) so that sixteen products of |w| · 127 fit
/// in Int16 (16 · 16 · 127 = 32512).
///
/// The integer block sums are the same integers as the one-token kernels', and the floating-point
/// steps after them are the same operations in the same order, so the outputs are bit-identical.
extension InterleavedWeights {
    /// Tokens whose sums live in registers at once.
    static let tokenTile = 4
    /// Tokens that share one widening of a weight block.
    static let tokenSuperTile = 16

    /// Whether `multiplyTiled` applies: the weights fit the Int16 partial sums.
    public var supportsTiles: Bool { type == .q4_1 || type == .q5_0 }

    /// `output[t * rows + r]` for the rows of groups `groupRange` and tokens `0..<tokens`
    /// (a multiple of `tokenTile`), as `multiplyQ4_1` / `multiplyDecodedQ5_0` compute them.
    func multiplyTiled(groups groupRange: Range<Int>, activations: UnsafeRawPointer, activationRowBytes: Int, tokens: Int,
                       output: UnsafeMutablePointer<Float>) {
        precondition(supportsTiles && tokens % Self.tokenTile == 0)
        let blocks = columns / 32
        let lanes = Self.rowGroup
        let isQ4 = type == .q4_1
        let activationBlockBytes = isQ4 ? 36 : 34
        let quantOffset = isQ4 ? 4 : 2
        let groupBlock = isQ4 ? Self.q4_1GroupBlockBytes : Self.q8_0GroupBlockBytes
        let superTile = Self.tokenSuperTile
        withUnsafeTemporaryAllocation(byteCount: 8192, alignment: 64) { buffer in
            let base = buffer.baseAddress!
            let wide = base.assumingMemoryBound(to: Int16.self)                         // 32 × 32 Int16: 2048 bytes
            let widened = (base + 2048).assumingMemoryBound(to: Int16.self)            // super-tile × 32 Int16: 1024
            let partials = (base + 3072).assumingMemoryBound(to: Int16.self)           // 4 × 32 Int16: 256
            let sums = (base + 3328).assumingMemoryBound(to: Int32.self)               // 4 × 32 Int32: 512
            let accumulators = (base + 3840).assumingMemoryBound(to: Float.self)       // super-tile × 32 Float: 2048
            let minimums = (base + 5888).assumingMemoryBound(to: Float.self)           // super-tile × 32 Float: 2048 (ends 7936)
            for group in groupRange {
                var first = 0
                while first < tokens {
                    let count = min(superTile, tokens - first)
                    for i in 0..<(count * lanes) {
                        accumulators[i] = 0
                        minimums[i] = 0
                    }
                    for block in 0..<blocks {
                        let source = storage + (group * blocks + block) * groupBlock
                        Self.widen(source, isQ4: isQ4, into: wide)
                        for t in 0..<count {
                            let quants = (activations + (first + t) * activationRowBytes + block * activationBlockBytes + quantOffset)
                                .assumingMemoryBound(to: Int8.self)
                            let row = widened + t * 32
                            for k in 0..<32 { row[k] = Int16(quants[k]) }
                        }
                        let halves = source.assumingMemoryBound(to: Float16.self)
                        var tile = 0
                        while tile < count {
                            Self.tileSums(wide: wide, activations: widened + tile * 32, partials: partials, sums: sums)
                            for t in 0..<Self.tokenTile {
                                let activation = activations + (first + tile + t) * activationRowBytes + block * activationBlockBytes
                                let activationScale = loadHalf(activation, 0)
                                let accumulator = accumulators + (tile + t) * lanes
                                let integer = sums + t * lanes
                                for lane in 0..<lanes {
                                    accumulator[lane] += Float(integer[lane]) * (Float(halves[lane]) * activationScale)
                                }
                                if isQ4 {
                                    let activationSum = loadHalf(activation, 2)
                                    let minimum = minimums + (tile + t) * lanes
                                    for lane in 0..<lanes { minimum[lane] += Float(halves[lanes + lane]) * activationSum }
                                }
                            }
                            tile += Self.tokenTile
                        }
                    }
                    for t in 0..<count {
                        let destination = output + (first + t) * rows + group * lanes
                        let accumulator = accumulators + t * lanes
                        if isQ4 {
                            let minimum = minimums + t * lanes
                            for lane in 0..<lanes { destination[lane] = accumulator[lane] + minimum[lane] }
                        } else {
                            for lane in 0..<lanes { destination[lane] = accumulator[lane] }
                        }
                    }
                    first += count
                }
            }
        }
    }

    /// Block `source` (one group's 32 rows × 32 elements) as Int16, element-major:
    /// `wide[k * 32 + lane]` is element k of row `lane`.
    @inline(__always)
    static func widen(_ source: UnsafeRawPointer, isQ4: Bool, into wide: UnsafeMutablePointer<Int16>) {
        if isQ4 {
            widenNibbles(source + Q4_1GroupBlock.quants, into: wide)
        } else {
            let quants = (source + 64).assumingMemoryBound(to: Int8.self)
            for i in 0..<1024 { wide[i] = Int16(quants[i]) }
        }
    }

    /// 32 rows' packed bytes j in 0..<16 (element j in the low nibble, j + 16 in the high) as
    /// Int16, element-major: `wide[k * 32 + lane]`.
    @inline(__always)
    static func widenNibbles(_ packed: UnsafeRawPointer, into wide: UnsafeMutablePointer<Int16>) {
        let bytes = packed.assumingMemoryBound(to: UInt8.self)
        for i in 0..<512 {
            wide[i] = Int16(bytes[i] & 0x0F)
            wide[512 + i] = Int16(bytes[i] >> 4)
        }
    }

    /// `sums[t * 32 + lane] = Σ_k wide[k * 32 + lane] · activations[t * 32 + k]` for four tokens,
    /// each half of the block summed in Int16 registers, then widened.
    @inline(__always)
    static func tileSums(wide: UnsafePointer<Int16>, activations a: UnsafePointer<Int16>,
                         partials: UnsafeMutablePointer<Int16>, sums: UnsafeMutablePointer<Int32>) {
        let weights = UnsafeRawPointer(wide)
        let partialBytes = UnsafeMutableRawPointer(partials)
        for half in 0..<2 {
            var p0 = SIMD32<Int16>(), p1 = SIMD32<Int16>(), p2 = SIMD32<Int16>(), p3 = SIMD32<Int16>()
            for k in (half * 16)..<(half * 16 + 16) {
                let w = weights.loadUnaligned(fromByteOffset: k * 64, as: SIMD32<Int16>.self)
                p0 &+= w &* SIMD32<Int16>(repeating: a[k])
                p1 &+= w &* SIMD32<Int16>(repeating: a[32 + k])
                p2 &+= w &* SIMD32<Int16>(repeating: a[64 + k])
                p3 &+= w &* SIMD32<Int16>(repeating: a[96 + k])
            }
            partialBytes.storeBytes(of: p0, toByteOffset: 0, as: SIMD32<Int16>.self)
            partialBytes.storeBytes(of: p1, toByteOffset: 64, as: SIMD32<Int16>.self)
            partialBytes.storeBytes(of: p2, toByteOffset: 128, as: SIMD32<Int16>.self)
            partialBytes.storeBytes(of: p3, toByteOffset: 192, as: SIMD32<Int16>.self)
            if half == 0 {
                for i in 0..<128 { sums[i] = Int32(partials[i]) }
            } else {
                for i in 0..<128 { sums[i] &+= Int32(partials[i]) }
            }
        }
    }
}

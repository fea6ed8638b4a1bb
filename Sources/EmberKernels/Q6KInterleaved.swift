import CPrefetch
import EmberCore

/// Q6_K weights interleaved by 32 rows, the same size as the file, and the kernels over them.
///
/// Layout, per group of 32 rows and per 256-element super-block (6720 bytes = 32 × 210):
/// - 0 ..< 64: the 32 rows' `d` halves;
/// - 64 ..< 576: for each 16-element sub-block s in 0..<16, the 32 rows' Int8 scale;
/// - then per 32-element block b in 0..<8 (768 bytes), for j in 0..<8 (96 bytes each, so that a
///   one-token pass reads the block front to back, which the hardware prefetchers follow): the 32
///   rows' byte (low 4 bits of element j) | (low 4 bits of element j + 16) << 4; the 32 rows' byte
///   (low 4 bits of element j + 8) | (low 4 bits of element j + 24) << 4; the 32 rows' byte of the
///   2-bit high parts of elements j, j + 8, j + 16, j + 24 (bits 0, 2, 4, 6).
///
/// Element e of a super-block is q = (low | high << 4) − 32 in −32…31, as in the file. The kernels
/// compute each super-block's integer sum Σ_s scale_s · Σ_{e in s} q_e · y_e exactly (the same
/// integer as `VectorKernels.dotQ6_K`) and add up the super-blocks' `d_y · d_w · isum` in
/// `sumBlocks`' order, so outputs are bit-identical to the row kernel.
///
/// The batched kernel widens a 32 × 32 block to Int16 once and reuses it for up to 16 tokens, four
/// at a time in registers. Products are at most 32 · 127, so eight of them fit in Int16
/// (8 · 32 · 127 = 32512 ≤ 32767); each half sub-block's Int16 sum is widened before scaling.
extension InterleavedWeights {
    static let q6SuperBlockBytes = 6720

    /// Rearranges `rows` (a multiple of 32) of Q6_K rows `rowBytes` apart; groups `range`.
    static func interleaveQ6_K(_ data: UnsafeRawPointer, rowBytes: Int, superBlocks: Int, groups range: Range<Int>,
                               into storage: UnsafeMutableRawPointer) {
        let lanes = rowGroup
        var values = [Int8](repeating: 0, count: 256)
        for group in range {
            for superBlock in 0..<superBlocks {
                let destination = storage + (group * superBlocks + superBlock) * q6SuperBlockBytes
                for lane in 0..<lanes {
                    let source = data + (group * lanes + lane) * rowBytes + superBlock * 210
                    destination.storeBytes(of: source.loadUnaligned(fromByteOffset: 208, as: UInt16.self), toByteOffset: 2 * lane, as: UInt16.self)
                    for s in 0..<16 {
                        destination.storeBytes(of: source.load(fromByteOffset: 192 + s, as: UInt8.self), toByteOffset: 64 + s * lanes + lane, as: UInt8.self)
                    }
                    // Unsigned 6-bit values (q + 32) of the 256 elements.
                    for e in 0..<256 {
                        let half = e / 128, r = e % 128, quarter = r / 32, l = r % 32
                        let low = source.load(fromByteOffset: half * 64 + l + (quarter & 1) * 32, as: UInt8.self)
                        let nibble = quarter < 2 ? low & 0x0F : low >> 4
                        let high = (source.load(fromByteOffset: 128 + half * 32 + l, as: UInt8.self) >> UInt8(2 * quarter)) & 3
                        values[e] = Int8(bitPattern: nibble | high << 4)
                    }
                    for block in 0..<8 {
                        let out = destination + 576 + block * 768
                        let v = { (k: Int) in UInt8(bitPattern: values[block * 32 + k]) }
                        for j in 0..<16 {
                            out.storeBytes(of: (v(j) & 0x0F) | (v(j + 16) & 0x0F) << 4, toByteOffset: Self.q6LowOffset(j) + lane, as: UInt8.self)
                        }
                        for j in 0..<8 {
                            let bits = v(j) >> 4 | (v(j + 8) >> 4) << 2 | (v(j + 16) >> 4) << 4 | (v(j + 24) >> 4) << 6
                            out.storeBytes(of: bits, toByteOffset: Self.q6HighOffset(j) + lane, as: UInt8.self)
                        }
                    }
                }
            }
        }
    }

    /// Offset in a block of the 32 rows' low-nibble byte `m` (elements m and m + 16), m in 0..<16.
    @inline(__always)
    static func q6LowOffset(_ m: Int) -> Int { (m % 8) * 96 + (m / 8) * 32 }

    /// Offset in a block of the 32 rows' high-bits byte `j` (elements j, j + 8, j + 16, j + 24).
    @inline(__always)
    static func q6HighOffset(_ j: Int) -> Int { j * 96 + 64 }

    /// Block `block` of a super-block's quants as Int16, element-major: `wide[k * 32 + lane]`.
    @inline(__always)
    static func widenQ6(_ superBlock: UnsafeRawPointer, block: Int, into wide: UnsafeMutablePointer<Int16>) {
        let quants = (superBlock + 576 + block * 768).assumingMemoryBound(to: UInt8.self)
        for j in 0..<8 {
            let first = quants + j * 96, second = first + 32, high = first + 64
            for lane in 0..<32 {
                let h = high[lane], i = j * 32 + lane
                wide[i] = Int16((first[lane] & 0x0F) | (h & 3) << 4) &- 32
                wide[256 + i] = Int16((second[lane] & 0x0F) | ((h >> 2) & 3) << 4) &- 32
                wide[512 + i] = Int16((first[lane] >> 4) | ((h >> 4) & 3) << 4) &- 32
                wide[768 + i] = Int16((second[lane] >> 4) | (h >> 6) << 4) &- 32
            }
        }
    }

    /// Output for groups `groupRange` and tokens `0..<tokens`, activations quantized to Q8_K.
    func multiplyQ6_K(groups groupRange: Range<Int>, activations: UnsafeRawPointer, activationRowBytes: Int, tokens: Int,
                      output: UnsafeMutablePointer<Float>) {
        if tokens == 1 {
            multiplyQ6_KOneToken(groups: groupRange, activations: activations, output: output)
            return
        }
        let superBlocks = columns / 256
        let lanes = Self.rowGroup
        let superTile = Self.tokenSuperTile
        let fullQuads = superBlocks / 4 * 4
        withUnsafeTemporaryAllocation(byteCount: 16384, alignment: 64) { buffer in
            let base = buffer.baseAddress!
            let wide = base.assumingMemoryBound(to: Int16.self)                      // 32 × 32 Int16: 2048
            let widened = (base + 2048).assumingMemoryBound(to: Int16.self)         // 16 × 32 Int16: 1024
            let partials = (base + 3072).assumingMemoryBound(to: Int16.self)        // 2 × 4 × 32 Int16: 512
            let scales = (base + 3584).assumingMemoryBound(to: Int32.self)          // 2 × 32 Int32: 256
            let sums = (base + 3840).assumingMemoryBound(to: Int32.self)            // 16 × 32 Int32: 2048
            let accumulators = (base + 5888).assumingMemoryBound(to: Float.self)    // 4 × 16 × 32 Float: 8192 (ends 14080)
            for group in groupRange {
                var first = 0
                while first < tokens {
                    let count = min(superTile, tokens - first)
                    let tiled = count / Self.tokenTile * Self.tokenTile
                    for i in 0..<(4 * superTile * lanes) { accumulators[i] = 0 }
                    for superBlock in 0..<superBlocks {
                        let source = storage + (group * superBlocks + superBlock) * Self.q6SuperBlockBytes
                        for i in 0..<(count * lanes) { sums[i] = 0 }
                        for block in 0..<8 {
                            Self.widenQ6(source, block: block, into: wide)
                            let blockScales = (source + 64 + block * 2 * lanes).assumingMemoryBound(to: Int8.self)
                            for i in 0..<(2 * lanes) { scales[i] = Int32(blockScales[i]) }
                            for t in 0..<count {
                                let quants = (activations + (first + t) * activationRowBytes + superBlock * Q8_KBlock.bytes + Q8_KBlock.quants + block * 32)
                                    .assumingMemoryBound(to: Int8.self)
                                let row = widened + t * 32
                                for k in 0..<32 { row[k] = Int16(quants[k]) }
                            }
                            var tile = 0
                            while tile < tiled {
                                Self.q6TileSums(wide: wide, activations: widened + tile * 32, partials: partials, scales: scales,
                                                sums: sums + tile * lanes)
                                tile += Self.tokenTile
                            }
                            while tile < count {
                                Self.q6TokenSums(wide: wide, activations: widened + tile * 32, partials: partials, scales: scales,
                                                 sums: sums + tile * lanes)
                                tile += 1
                            }
                        }
                        let halves = source.assumingMemoryBound(to: Float16.self)
                        let slot = superBlock < fullQuads ? superBlock % 4 : 0
                        for t in 0..<count {
                            let scale = (activations + (first + t) * activationRowBytes + superBlock * Q8_KBlock.bytes).loadUnaligned(as: Float.self)
                            let accumulator = accumulators + (slot * superTile + t) * lanes
                            let integer = sums + t * lanes
                            for lane in 0..<lanes {
                                accumulator[lane] += scale * Float(halves[lane]) * Float(integer[lane])
                            }
                        }
                    }
                    for t in 0..<count {
                        let destination = output + (first + t) * rows + group * lanes
                        let s0 = accumulators + t * lanes, s1 = s0 + superTile * lanes
                        let s2 = s1 + superTile * lanes, s3 = s2 + superTile * lanes
                        for lane in 0..<lanes { destination[lane] = (s0[lane] + s1[lane]) + (s2[lane] + s3[lane]) }
                    }
                    first += count
                }
            }
        }
    }

    /// `multiplyQ6_K` for one token: the weights are unpacked in registers (`Widening.q6Elements`)
    /// and never stored; the same integers and the same floating-point order.
    func multiplyQ6_KOneToken(groups groupRange: Range<Int>, activations: UnsafeRawPointer, output: UnsafeMutablePointer<Float>) {
        let superBlocks = columns / 256
        let fullQuads = superBlocks / 4 * 4
        for group in groupRange {
            // Four running sums (super-blocks 4k + slot), rows 0..<16 and 16..<32 of each.
            var sums = (SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(),
                        SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>(), SIMD16<Float>())
            for superBlock in 0..<superBlocks {
                let source = storage + (group * superBlocks + superBlock) * Self.q6SuperBlockBytes
                let activation = activations + superBlock * Q8_KBlock.bytes
                var integerLow = SIMD16<Int32>(), integerHigh = SIMD16<Int32>()
                for block in 0..<8 {
                    let quants = (activation + 4 + block * 32).assumingMemoryBound(to: Int8.self)
                    let weights = source + 576 + block * 768
                    // Elements 0..<8, 8..<16, 16..<24, 24..<32 of the block: eight products of at
                    // most 32 · 127 each fit in 16 bits.
                    var part0 = SIMD32<Int16>(), part1 = SIMD32<Int16>(), part2 = SIMD32<Int16>(), part3 = SIMD32<Int16>()
                    for j in 0..<8 {
                        ember_prefetch(weights + j * 96 + 2048)
                        ember_prefetch(weights + j * 96 + 2048 + 64)
                        let (e0, e8, e16, e24) = Widening.q6Elements(weights, j)
                        part0 &+= e0 &* SIMD32<Int16>(repeating: Int16(quants[j]))
                        part1 &+= e8 &* SIMD32<Int16>(repeating: Int16(quants[j + 8]))
                        part2 &+= e16 &* SIMD32<Int16>(repeating: Int16(quants[j + 16]))
                        part3 &+= e24 &* SIMD32<Int16>(repeating: Int16(quants[j + 24]))
                    }
                    let (low0, high0) = Widening.words(part0)
                    let (low1, high1) = Widening.words(part1)
                    let (low2, high2) = Widening.words(part2)
                    let (low3, high3) = Widening.words(part3)
                    let scales = source + 64 + block * 64
                    let scaleLow0 = Widening.signedBytes32(scales), scaleHigh0 = Widening.signedBytes32(scales + 16)
                    let scaleLow1 = Widening.signedBytes32(scales + 32), scaleHigh1 = Widening.signedBytes32(scales + 48)
                    integerLow &+= (low0 &+ low1) &* scaleLow0 &+ (low2 &+ low3) &* scaleLow1
                    integerHigh &+= (high0 &+ high1) &* scaleHigh0 &+ (high2 &+ high3) &* scaleHigh1
                }
                let scale = activation.loadUnaligned(as: Float.self)
                let low = (Widening.halves(source) * scale) * Widening.floats(integerLow)
                let high = (Widening.halves(source + 32) * scale) * Widening.floats(integerHigh)
                switch superBlock < fullQuads ? superBlock % 4 : 0 {
                case 0: sums.0 += low; sums.1 += high
                case 1: sums.2 += low; sums.3 += high
                case 2: sums.4 += low; sums.5 += high
                default: sums.6 += low; sums.7 += high
                }
            }
            let destination = UnsafeMutableRawPointer(output + group * Self.rowGroup)
            destination.storeBytes(of: (sums.0 + sums.2) + (sums.4 + sums.6), as: SIMD16<Float>.self)
            destination.storeBytes(of: (sums.1 + sums.3) + (sums.5 + sums.7), toByteOffset: 64, as: SIMD16<Float>.self)
        }
    }

    /// Adds to `sums[t * 32 + lane]` (four tokens) the block's two scaled sub-block sums, each
    /// half sub-block (eight products) summed in Int16 registers.
    @inline(__always)
    static func q6TileSums(wide: UnsafePointer<Int16>, activations a: UnsafePointer<Int16>, partials: UnsafeMutablePointer<Int16>,
                           scales: UnsafePointer<Int32>, sums: UnsafeMutablePointer<Int32>) {
        let weights = UnsafeRawPointer(wide)
        let partialBytes = UnsafeMutableRawPointer(partials)
        for sub in 0..<2 {
            for half in 0..<2 {
                var p0 = SIMD32<Int16>(), p1 = SIMD32<Int16>(), p2 = SIMD32<Int16>(), p3 = SIMD32<Int16>()
                let start = sub * 16 + half * 8
                for k in start..<(start + 8) {
                    let w = weights.loadUnaligned(fromByteOffset: k * 64, as: SIMD32<Int16>.self)
                    p0 &+= w &* SIMD32<Int16>(repeating: a[k])
                    p1 &+= w &* SIMD32<Int16>(repeating: a[32 + k])
                    p2 &+= w &* SIMD32<Int16>(repeating: a[64 + k])
                    p3 &+= w &* SIMD32<Int16>(repeating: a[96 + k])
                }
                let offset = half * 256
                partialBytes.storeBytes(of: p0, toByteOffset: offset, as: SIMD32<Int16>.self)
                partialBytes.storeBytes(of: p1, toByteOffset: offset + 64, as: SIMD32<Int16>.self)
                partialBytes.storeBytes(of: p2, toByteOffset: offset + 128, as: SIMD32<Int16>.self)
                partialBytes.storeBytes(of: p3, toByteOffset: offset + 192, as: SIMD32<Int16>.self)
            }
            let scale = scales + sub * 32
            for t in 0..<4 {
                let sum = sums + t * 32, first = partials + t * 32, second = partials + 128 + t * 32
                for lane in 0..<32 {
                    sum[lane] &+= (Int32(first[lane]) &+ Int32(second[lane])) &* scale[lane]
                }
            }
        }
    }

    /// `q6TileSums` for one token.
    @inline(__always)
    static func q6TokenSums(wide: UnsafePointer<Int16>, activations a: UnsafePointer<Int16>, partials: UnsafeMutablePointer<Int16>,
                            scales: UnsafePointer<Int32>, sums: UnsafeMutablePointer<Int32>) {
        let weights = UnsafeRawPointer(wide)
        let partialBytes = UnsafeMutableRawPointer(partials)
        for sub in 0..<2 {
            for half in 0..<2 {
                var p = SIMD32<Int16>()
                let start = sub * 16 + half * 8
                for k in start..<(start + 8) {
                    p &+= weights.loadUnaligned(fromByteOffset: k * 64, as: SIMD32<Int16>.self) &* SIMD32<Int16>(repeating: a[k])
                }
                partialBytes.storeBytes(of: p, toByteOffset: half * 64, as: SIMD32<Int16>.self)
            }
            let scale = scales + sub * 32
            for lane in 0..<32 {
                sums[lane] &+= (Int32(partials[lane]) &+ Int32(partials[32 + lane])) &* scale[lane]
            }
        }
    }

    /// Scalar twin of `multiplyQ6_K`: element by element from the interleaved layout, the same
    /// integers and the same floating-point order.
    public func multiplyQ6_KReference(activations: UnsafeRawPointer, activationRowBytes: Int, tokens: Int, output: UnsafeMutablePointer<Float>) {
        let superBlocks = columns / 256
        let lanes = Self.rowGroup
        let fullQuads = superBlocks / 4 * 4
        for row in 0..<rows {
            let group = row / lanes, lane = row % lanes
            for token in 0..<tokens {
                var s: [Float] = [0, 0, 0, 0]
                for superBlock in 0..<superBlocks {
                    let source = storage + (group * superBlocks + superBlock) * Self.q6SuperBlockBytes
                    let activation = activations + token * activationRowBytes + superBlock * Q8_KBlock.bytes
                    var isum: Int32 = 0
                    for sub in 0..<16 {
                        var subSum: Int32 = 0
                        for i in 0..<16 {
                            let e = sub * 16 + i, block = e / 32, k = e % 32
                            let quants = source + 576 + block * 768
                            let low = quants.load(fromByteOffset: Self.q6LowOffset(k % 16) + lane, as: UInt8.self)
                            let nibble = k < 16 ? low & 0x0F : low >> 4
                            let high = (quants.load(fromByteOffset: Self.q6HighOffset(k % 8) + lane, as: UInt8.self) >> UInt8(2 * (k / 8))) & 3
                            let q = Int32(nibble | high << 4) - 32
                            subSum += q * Int32(activation.load(fromByteOffset: 4 + e, as: Int8.self))
                        }
                        isum += subSum * Int32(source.load(fromByteOffset: 64 + sub * lanes + lane, as: Int8.self))
                    }
                    let slot = superBlock < fullQuads ? superBlock % 4 : 0
                    s[slot] += activation.loadUnaligned(as: Float.self) * loadHalf(source, 2 * lane) * Float(isum)
                }
                output[token * rows + row] = (s[0] + s[1]) + (s[2] + s[3])
            }
        }
    }
}

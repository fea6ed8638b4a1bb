import EmberCore

/// Prompt processing with tokens in the vector lanes: for batches of `tokenLaneMinimum` tokens or
/// more over small interleaved weights (Q4_1, Q5_0 decoded).
///
/// The activations are transposed once per multiplication into token vectors: per 32 tokens and
/// 32-element block, pair p of elements (2p, 2p + 1) of all 32 tokens in 64 bytes. Each weight
/// pair of a group's block is repeated across 64 bytes once per block (`splatWeights`) and used
/// for every token vector. The products are unsigned weight bytes × signed activation bytes
/// summed in pairs (`Widening.pairProducts`: one `vpmaddubsw` per 64 products on x86), partial
/// sums in 16 bits, then the block's exact integer sum — the same integer as the one-token
/// kernels' — and the same floating-point steps in the same order, so the outputs are
/// bit-identical to `multiplyQ4_1` / `multiplyBlockSums`.
extension InterleavedWeights {
    /// Batches of at least this many tokens go through `multiplyTokenLanes`; below it, splatting
    /// the weights costs more than it saves.
    public static let tokenLaneMinimum = 64

    /// Bytes of one token vector's block of transposed activations: 16 pairs × 64 bytes, then the
    /// 32 tokens' scales (Float) and sums (Float `s` of Q8_1, or Int32 16 · Σ q for Q8_0).
    static let tokenLaneBlockBytes = 1024 + 128 + 128

    /// Scratch for the transposed activations of `tokens` tokens (0 below `tokenLaneMinimum`).
    public static func tokenLaneScratchBytes(columns: Int, tokens: Int) -> Int {
        tokens >= tokenLaneMinimum ? (tokens + 31) / 32 * (columns / 32) * tokenLaneBlockBytes : 0
    }

    /// The 16-bit word of a transposed block that holds pair p (elements 2p, 2p + 1) of token `lane`:
    /// pair p is half p % 2 of quad p / 2 in the quad layout.
    @inline(__always)
    static func pairIndex(_ p: Int, lane: Int, quads: Bool) -> Int {
        quads ? (p / 2) * 64 + (lane / 16) * 32 + (lane % 16) * 2 + p % 2 : p * 32 + lane
    }

    /// Transposes token vectors `vectors` of the quantized activations (Q8_1 for Q4_1 weights,
    /// Q8_0 for decoded Q5_0) into `lanes`; tokens past `tokens` are zero.
    ///
    /// `quads`: the layout of the four-byte dot products (`PromptKernel.avx512VNNI`): per quad q of
    /// elements 4q ..< 4q + 4 and half h of the 32 tokens, 16 tokens × 4 bytes at (2q + h) · 64,
    /// instead of pair p of all 32 tokens at p · 64. The scales and sums after them are the same.
    func transposeActivations(_ activations: UnsafeRawPointer, activationRowBytes: Int, tokens: Int, vectors: Range<Int>,
                              quads: Bool = false, into lanes: UnsafeMutableRawPointer) {
        let blocks = columns / 32
        let isQ4 = type == .q4_1
        let activationBlockBytes = isQ4 ? 36 : 34
        let quantOffset = isQ4 ? 4 : 2
        for vector in vectors {
            for block in 0..<blocks {
                let out = lanes + (vector * blocks + block) * Self.tokenLaneBlockBytes
                let pairs = out.assumingMemoryBound(to: UInt16.self)
                let scales = (out + 1024).assumingMemoryBound(to: Float.self)
                for lane in 0..<32 {
                    let token = vector * 32 + lane
                    guard token < tokens else {
                        for p in 0..<16 { pairs[Self.pairIndex(p, lane: lane, quads: quads)] = 0 }
                        scales[lane] = 0
                        (out + 1152).storeBytes(of: 0, toByteOffset: 4 * lane, as: UInt32.self)
                        continue
                    }
                    let activation = activations + token * activationRowBytes + block * activationBlockBytes
                    let quants = activation + quantOffset
                    for p in 0..<16 {
                        pairs[Self.pairIndex(p, lane: lane, quads: quads)] = quants.loadUnaligned(fromByteOffset: 2 * p, as: UInt16.self)
                    }
                    scales[lane] = loadHalf(activation, 0)
                    if isQ4 {
                        (out + 1152).storeBytes(of: loadHalf(activation, 2), toByteOffset: 4 * lane, as: Float.self)
                    } else {
                        (out + 1152).storeBytes(of: 16 &* Widening.sum32(quants), toByteOffset: 4 * lane, as: Int32.self)
                    }
                }
            }
        }
    }

    /// `output[t * rows + r]` for the rows of groups `groupRange` and tokens `0..<tokens`, from
    /// activations transposed by `transposeActivations`.
    func multiplyTokenLanes(groups groupRange: Range<Int>, lanes: UnsafeRawPointer, tokens: Int, output: UnsafeMutablePointer<Float>,
                            workspace: UnsafeMutableRawPointer) {
        let blocks = columns / 32
        let isQ4 = type == .q4_1
        let groupBlock = isQ4 ? Self.q4_1GroupBlockBytes : Self.q8_0GroupBlockBytes
        let vectors = (tokens + 31) / 32
        // Nibbles (0…15): eight pairs of products ≤ 2 · 15 · 127 sum in 16 bits; Q5_0 plus 16
        // (0…31): four pairs ≤ 2 · 31 · 127.
        let stretch = isQ4 ? 8 : 4
        // The workspace: the splatted weights, four rows' sums, then the running sums and
        // minimums of as many token vectors as fit (22, 704 tokens, in 192 KiB).
        let splatBytes = 4 * 16 * 64
        let splats = workspace
        let sums = splats + splatBytes                                                   // two vectors × 4 rows × 32 Int32
        let accumulatorBytes = ThreadPool.workspaceBytes - splatBytes - 1024
        let chunk = min(vectors, (accumulatorBytes / (2 * Self.rowGroup * 4) - 16) / 32)
        precondition(chunk >= 1)
        // One row's sums; the extra 64 bytes keep the 32 rows off the same cache sets.
        let rowStride = chunk * 32 + 16
        let accumulators = (sums + 1024).assumingMemoryBound(to: Float.self)             // [row][token]
        let minimums = accumulators + Self.rowGroup * rowStride                         // [row][token]
        for group in groupRange {
            var firstVector = 0
            while firstVector < vectors {
                let chunkVectors = min(chunk, vectors - firstVector)
                accumulators.initialize(repeating: 0, count: 2 * Self.rowGroup * rowStride)
                for block in 0..<blocks {
                    let source = storage + (group * blocks + block) * groupBlock
                    let weightScales = source.assumingMemoryBound(to: Float16.self)
                    // Four rows at a time: their splatted pairs (4 KiB) stay in L1 across the token vectors.
                    var rowTile = 0
                    while rowTile < Self.rowGroup {
                        Self.splatWeights(source, isQ4: isQ4, rows: rowTile..<(rowTile + 4), into: splats)
                        var vector = 0
                        while vector < chunkVectors {
                            let pair = vector + 1 < chunkVectors
                            let firstActivation = lanes + ((firstVector + vector) * blocks + block) * Self.tokenLaneBlockBytes
                            if pair {
                                Self.tokenLaneSums2(splats: splats, activations: firstActivation, stride: blocks * Self.tokenLaneBlockBytes,
                                                    stretch: stretch, into: sums)
                            } else {
                                Self.tokenLaneSums(splats: splats, activations: firstActivation, stretch: stretch, into: sums)
                            }
                            for member in 0..<(pair ? 2 : 1) {
                                let activation = firstActivation + member * blocks * Self.tokenLaneBlockBytes
                                let vectorSums = sums + member * 512
                                let column = (vector + member) * 32
                                let scaleLow = activation.load(fromByteOffset: 1024, as: SIMD16<Float>.self)
                                let scaleHigh = activation.load(fromByteOffset: 1088, as: SIMD16<Float>.self)
                                for i in 0..<4 {
                                    let row = rowTile + i
                                    var integerLow = vectorSums.load(fromByteOffset: i * 128, as: SIMD16<Int32>.self)
                                    var integerHigh = vectorSums.load(fromByteOffset: i * 128 + 64, as: SIMD16<Int32>.self)
                                    if !isQ4 {
                                        integerLow &-= activation.load(fromByteOffset: 1152, as: SIMD16<Int32>.self)
                                        integerHigh &-= activation.load(fromByteOffset: 1216, as: SIMD16<Int32>.self)
                                    }
                                    let accumulator = UnsafeMutableRawPointer(accumulators + row * rowStride + column)
                                    let weightScale = SIMD16<Float>(repeating: Float(weightScales[row]))
                                    accumulator.storeBytes(of: accumulator.load(as: SIMD16<Float>.self)
                                                           + Widening.floats(integerLow) * (weightScale * scaleLow), as: SIMD16<Float>.self)
                                    accumulator.storeBytes(of: accumulator.load(fromByteOffset: 64, as: SIMD16<Float>.self)
                                                           + Widening.floats(integerHigh) * (weightScale * scaleHigh),
                                                           toByteOffset: 64, as: SIMD16<Float>.self)
                                    if isQ4 {
                                        let minimum = UnsafeMutableRawPointer(minimums + row * rowStride + column)
                                        let weightMinimum = SIMD16<Float>(repeating: Float(weightScales[32 + row]))
                                        minimum.storeBytes(of: minimum.load(as: SIMD16<Float>.self)
                                                           + weightMinimum * activation.load(fromByteOffset: 1152, as: SIMD16<Float>.self),
                                                           as: SIMD16<Float>.self)
                                        minimum.storeBytes(of: minimum.load(fromByteOffset: 64, as: SIMD16<Float>.self)
                                                           + weightMinimum * activation.load(fromByteOffset: 1216, as: SIMD16<Float>.self),
                                                           toByteOffset: 64, as: SIMD16<Float>.self)
                                    }
                            }
                            }
                            vector += pair ? 2 : 1
                        }
                        rowTile += 4
                    }
                }
                // Token by token, so each token's 32 outputs are written together.
                let firstToken = firstVector * 32
                for token in firstToken..<min(tokens, firstToken + chunkVectors * 32) {
                    let destination = output + token * rows + group * Self.rowGroup
                    let column = token - firstToken
                    if isQ4 {
                        for row in 0..<Self.rowGroup {
                            destination[row] = accumulators[row * rowStride + column] + minimums[row * rowStride + column]
                        }
                    } else {
                        for row in 0..<Self.rowGroup { destination[row] = accumulators[row * rowStride + column] }
                    }
                }
                firstVector += chunkVectors
            }
        }
    }

    /// The integer sums of four rows (whose splatted pairs start at `splats`, 1 KB per row) with
    /// one token vector's block, stored as row i's tokens 0..<16 then 16..<32 at `i · 128`.
    @inline(__always)
    static func tokenLaneSums(splats: UnsafeRawPointer, activations: UnsafeRawPointer, stretch: Int, into sums: UnsafeMutableRawPointer) {
        var low0 = SIMD16<Int32>(), low1 = SIMD16<Int32>(), low2 = SIMD16<Int32>(), low3 = SIMD16<Int32>()
        var high0 = SIMD16<Int32>(), high1 = SIMD16<Int32>(), high2 = SIMD16<Int32>(), high3 = SIMD16<Int32>()
        var start = 0
        while start < 16 {
            var p0 = SIMD32<Int16>(), p1 = SIMD32<Int16>(), p2 = SIMD32<Int16>(), p3 = SIMD32<Int16>()
            for p in start..<(start + stretch) {
                let a = activations.load(fromByteOffset: p * 64, as: SIMD64<Int8>.self)
                p0 &+= Widening.pairProducts(splats + p * 64, a)
                p1 &+= Widening.pairProducts(splats + 1024 + p * 64, a)
                p2 &+= Widening.pairProducts(splats + 2048 + p * 64, a)
                p3 &+= Widening.pairProducts(splats + 3072 + p * 64, a)
            }
            var (l, h) = Widening.words(p0); low0 &+= l; high0 &+= h
            (l, h) = Widening.words(p1); low1 &+= l; high1 &+= h
            (l, h) = Widening.words(p2); low2 &+= l; high2 &+= h
            (l, h) = Widening.words(p3); low3 &+= l; high3 &+= h
            start += stretch
        }
        sums.storeBytes(of: low0, toByteOffset: 0, as: SIMD16<Int32>.self)
        sums.storeBytes(of: high0, toByteOffset: 64, as: SIMD16<Int32>.self)
        sums.storeBytes(of: low1, toByteOffset: 128, as: SIMD16<Int32>.self)
        sums.storeBytes(of: high1, toByteOffset: 192, as: SIMD16<Int32>.self)
        sums.storeBytes(of: low2, toByteOffset: 256, as: SIMD16<Int32>.self)
        sums.storeBytes(of: high2, toByteOffset: 320, as: SIMD16<Int32>.self)
        sums.storeBytes(of: low3, toByteOffset: 384, as: SIMD16<Int32>.self)
        sums.storeBytes(of: high3, toByteOffset: 448, as: SIMD16<Int32>.self)
    }

    /// `tokenLaneSums` for two token vectors at once (`activations` and `activations + stride`):
    /// each splatted pair is loaded once for both; the second vector's sums follow at 512 bytes.
    @inline(__always)
    static func tokenLaneSums2(splats: UnsafeRawPointer, activations: UnsafeRawPointer, stride: Int, stretch: Int,
                               into sums: UnsafeMutableRawPointer) {
        var s = (SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(),
                 SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(),
                 SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>(), SIMD16<Int32>())
        let second = activations + stride
        var start = 0
        while start < 16 {
            var p0 = SIMD32<Int16>(), p1 = SIMD32<Int16>(), p2 = SIMD32<Int16>(), p3 = SIMD32<Int16>()
            var q0 = SIMD32<Int16>(), q1 = SIMD32<Int16>(), q2 = SIMD32<Int16>(), q3 = SIMD32<Int16>()
            for p in start..<(start + stretch) {
                let a = activations.load(fromByteOffset: p * 64, as: SIMD64<Int8>.self)
                let b = second.load(fromByteOffset: p * 64, as: SIMD64<Int8>.self)
                p0 &+= Widening.pairProducts(splats + p * 64, a)
                q0 &+= Widening.pairProducts(splats + p * 64, b)
                p1 &+= Widening.pairProducts(splats + 1024 + p * 64, a)
                q1 &+= Widening.pairProducts(splats + 1024 + p * 64, b)
                p2 &+= Widening.pairProducts(splats + 2048 + p * 64, a)
                q2 &+= Widening.pairProducts(splats + 2048 + p * 64, b)
                p3 &+= Widening.pairProducts(splats + 3072 + p * 64, a)
                q3 &+= Widening.pairProducts(splats + 3072 + p * 64, b)
            }
            var (l, h) = Widening.words(p0); s.0 &+= l; s.1 &+= h
            (l, h) = Widening.words(p1); s.2 &+= l; s.3 &+= h
            (l, h) = Widening.words(p2); s.4 &+= l; s.5 &+= h
            (l, h) = Widening.words(p3); s.6 &+= l; s.7 &+= h
            (l, h) = Widening.words(q0); s.8 &+= l; s.9 &+= h
            (l, h) = Widening.words(q1); s.10 &+= l; s.11 &+= h
            (l, h) = Widening.words(q2); s.12 &+= l; s.13 &+= h
            (l, h) = Widening.words(q3); s.14 &+= l; s.15 &+= h
            start += stretch
        }
        withUnsafeBytes(of: s) { sums.copyMemory(from: $0.baseAddress!, byteCount: 1024) }
    }

    /// Every weight pair of rows `rowRange` of a group's block repeated across 64 bytes:
    /// `splats[(i · 16 + p) · 64 ..< +64]` holds elements 2p and 2p + 1 of row `rowRange.lowerBound + i`
    /// as unsigned bytes (Q4_1 nibbles, or decoded Q5_0 plus 16). Not inlined: LLVM must not see
    /// that the vectors are splats, or it no longer forms `vpmaddubsw` from `Widening.pairProducts`.
    @inline(never)
    static func splatWeights(_ source: UnsafeRawPointer, isQ4: Bool, rows rowRange: Range<Int>, into splats: UnsafeMutableRawPointer) {
        for row in rowRange {
            for p in 0..<16 {
                let first = 2 * p, second = 2 * p + 1
                let pair: UInt16
                if isQ4 {
                    // Byte j of a row holds element j (low nibble) and element j + 16 (high nibble).
                    let packed = (source + 128).assumingMemoryBound(to: UInt8.self)
                    let a = first < 16 ? packed[first * 32 + row] & 0x0F : packed[(first - 16) * 32 + row] >> 4
                    let b = second < 16 ? packed[second * 32 + row] & 0x0F : packed[(second - 16) * 32 + row] >> 4
                    pair = UInt16(a) | UInt16(b) << 8
                } else {
                    let quants = (source + 64).assumingMemoryBound(to: Int8.self)
                    let a = UInt8(bitPattern: quants[first * 32 + row] &+ 16), b = UInt8(bitPattern: quants[second * 32 + row] &+ 16)
                    pair = UInt16(a) | UInt16(b) << 8
                }
                splats.storeBytes(of: SIMD32<UInt16>(repeating: pair), toByteOffset: ((row - rowRange.lowerBound) * 16 + p) * 64,
                                  as: SIMD32<UInt16>.self)
            }
        }
    }
}

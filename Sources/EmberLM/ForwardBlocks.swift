import EmberCore
import EmberGGUF
import EmberKernels
import Foundation

// The building blocks every forward pass is written with — the plain block of `InferenceSession`
// and the Gemma 3n / Gemma 4 passes alike: normalize rows, project, rotate, store keys and values,
// attend, activate a feed-forward gate, add to the residual stream. Each block computes every
// row as it would be alone, so spreading rows over threads, or batching rows of several
// sequences (a batched decode step), changes no bit of the result.

/// Where the rows of a forward batch go in the KV cache: consecutive positions of one sequence
/// (a prompt or a decode step), or the next position of a different sequence each (a batched
/// decode step).
struct RowPlacement {
    private let single: KeyValueCache?
    private let firstPosition: Int
    private let caches: [KeyValueCache]
    private let positions: [Int]

    init(cache: KeyValueCache, firstPosition: Int) {
        single = cache
        self.firstPosition = firstPosition
        caches = []
        positions = []
    }

    init(caches: [KeyValueCache]) {
        single = nil
        firstPosition = 0
        self.caches = caches
        positions = caches.map(\.count)
    }

    @inline(__always) func cache(_ row: Int) -> KeyValueCache { single ?? caches[row] }
    @inline(__always) func position(_ row: Int) -> Int { single == nil ? positions[row] : firstPosition + row }

    /// Records the batch's rows as filled.
    func advance(rows: Int) {
        if let single { single.count += rows } else { for cache in caches { cache.count += 1 } }
    }
}

/// The longest key and value heads and the widest rotary table of a model's layers: what the
/// attention blocks' per-thread scratch holds.
struct AttentionExtent: Sendable, Equatable {
    var keyLength: Int
    var valueLength: Int
    var rotaryDimensionCount: Int
    /// Query heads of one key-value head scored together over its keys (at most 4: the grouped
    /// score kernel's block); 1 where every query head has its own key-value head.
    var queryBlock: Int = 1

    /// The query block for heads that share key-value heads `group` to one.
    static func queryBlock(group: Int) -> Int { max(1, min(4, group)) }
}

/// The heads of one attention layer: counts, lengths, the visible window, the score scale and
/// the KV cache layer it reads.
struct AttentionHeads: Sendable, Equatable {
    var headCount: Int
    var keyValueHeadCount: Int
    var keyLength: Int
    var valueLength: Int
    /// Only the last `window` positions are visible; nil for global attention.
    var window: Int?
    var scale: Float
    var cacheLayer: Int

    var queryWidth: Int { headCount * keyLength }
    var keyWidth: Int { keyValueHeadCount * keyLength }
    var valueWidth: Int { keyValueHeadCount * valueLength }
}

/// The forward building blocks of one session, over its thread pool and its attention and
/// matrix-product scratch (sized by `ScratchLayout`).
///
/// Not thread-safe: owned by one `InferenceSession`, whose forward pass calls it from its thread.
final class ForwardBlocks {
    let model: TransformerModel
    let pool: ThreadPool
    let epsilon: Float
    let extent: AttentionExtent
    let contextLength: Int
    private let matmulScratch: UnsafeMutableRawPointer
    /// A group of logit rows of one slice of a streamed output projection (`projectInSlices`).
    private let sliceOutput: UnsafeMutablePointer<Float>
    private let scores: UnsafeMutablePointer<Float>       // threads × query block × context
    private let headScratch: UnsafeMutablePointer<Float>  // threads × `headScratchFloats`
    private let rotaryTables: UnsafeMutablePointer<Float> // threads × 2 × rotary dimensions

    /// Floats of attention scratch for `threadCount` threads: scores of a block of queries over
    /// the context, the block's queries and a key and value head widened, and rotary tables.
    static func attentionFloats(extent: AttentionExtent, contextLength: Int, threadCount: Int) -> Int {
        threadCount * (extent.queryBlock * contextLength + headScratchFloats(extent) + 2 * extent.rotaryDimensionCount)
    }

    /// One thread's queries (a block of them), widened key and widened value.
    private static func headScratchFloats(_ extent: AttentionExtent) -> Int {
        (extent.queryBlock + 1) * extent.keyLength + extent.valueLength
    }

    init(model: TransformerModel, pool: ThreadPool, extent: AttentionExtent, contextLength: Int, matmulScratchBytes: Int,
         sliceOutputFloats: Int) {
        self.model = model
        self.pool = pool
        self.extent = extent
        self.contextLength = contextLength
        epsilon = model.configuration.normEpsilon
        matmulScratch = .allocate(byteCount: max(matmulScratchBytes, 64), alignment: 64)
        sliceOutput = .allocate(capacity: max(1, sliceOutputFloats))
        scores = .allocate(capacity: max(1, pool.threadCount * extent.queryBlock * contextLength))
        headScratch = .allocate(capacity: max(1, pool.threadCount * Self.headScratchFloats(extent)))
        rotaryTables = .allocate(capacity: max(1, 2 * pool.threadCount * extent.rotaryDimensionCount))
    }

    deinit {
        matmulScratch.deallocate()
        sliceOutput.deallocate()
        scores.deallocate()
        headScratch.deallocate()
        rotaryTables.deallocate()
    }

    /// Runs `body` over ranges of `count` rows on the pool when a batch has enough rows to share,
    /// inline for a decode step. Each row is computed as it would be alone: same results.
    @inline(__always)
    func forRows(_ count: Int, _ body: (Range<Int>, Int) -> Void) {
        if count >= 16 { pool.parallelFor(count, body) } else { body(0..<count, 0) }
    }

    /// RMS-normalizes `rows` rows of `length` (in place when `output` is `input`), with `weight`
    /// or unweighted.
    func normalizeRows(_ input: UnsafePointer<Float>, weight: [Float]?, output: UnsafeMutablePointer<Float>,
                       rows: Int, length: Int) {
        let epsilon = self.epsilon
        if let weight {
            weight.withUnsafeBufferPointer { weight in
                forRows(rows) { range, _ in
                    for row in range {
                        Operations.rmsNorm(input + row * length, weight: weight.baseAddress, output: output + row * length,
                                           count: length, epsilon: epsilon)
                    }
                }
            }
        } else {
            forRows(rows) { range, _ in
                for row in range {
                    Operations.rmsNorm(input + row * length, weight: nil, output: output + row * length, count: length, epsilon: epsilon)
                }
            }
        }
    }

    /// `output = input · matrixᵀ` for `tokens` rows, with the kernel the matrix resolved at load
    /// (its rearranged copy, the same sums read from the file while weights stream, or the file's
    /// layout); a matrix that streams in slices (the output projection) a slice of rows at a time.
    /// `rowByRow`: llama.cpp multiplies this matrix one dot product at a time (`mul_mat_id`, the
    /// experts) rather than through tinyBLAS, which adds F32 products up in another order.
    @inline(__always)
    func project(_ matrix: WeightMatrix, input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>,
                 rowByRow: Bool = false) {
        if let sliceRows = matrix.sliceRows {
            projectInSlices(matrix, sliceRows: sliceRows, input: input, tokens: tokens, output: output)
            return
        }
        matrix.kernel.multiply(weights: matrix.data, rows: matrix.rows, columns: matrix.columns, input: input, tokens: tokens,
                               output: output, scratch: matmulScratch, pool: pool, rowByRow: rowByRow)
    }

    /// `project` of several matrices over the same input (Q/K/V, gate/up): for one token whose
    /// matrices were all rearranged at load with one activation type, a single dispatch for all of
    /// them (`Kernels.matmulOneToken`: the threads synchronise once, not once a matrix); otherwise
    /// one `project` each. The same outputs either way.
    func project(together parts: [(matrix: WeightMatrix, output: UnsafeMutablePointer<Float>)], input: UnsafePointer<Float>,
                 tokens: Int) {
        if tokens == 1, parts.allSatisfy({ $0.matrix.sliceRows == nil && $0.matrix.interleaved != nil }),
           Kernels.matmulOneToken(parts.map { (weights: $0.matrix.interleaved!, output: $0.output) }, input: input,
                                  scratch: matmulScratch, pool: pool) {
            return
        }
        for part in parts { project(part.matrix, input: input, tokens: tokens, output: part.output) }
    }

    /// `project` of a streamed matrix `sliceRows` rows at a time (at most `ScratchLayout.logitGroupSize`
    /// tokens): each slice's pages are asked for ahead of use and dropped after, its products go
    /// to `sliceOutput`, then to their rows of `output` (the same sums as the whole matrix).
    private func projectInSlices(_ matrix: WeightMatrix, sliceRows: Int, input: UnsafePointer<Float>, tokens: Int,
                                 output: UnsafeMutablePointer<Float>) {
        let rowBytes = matrix.rowBytes
        var first = 0
        while first < matrix.rows {
            let rows = min(sliceRows, matrix.rows - first)
            let data = matrix.data + first * rowBytes
            if first + rows < matrix.rows {
                matrix.streamedFrom?.prefetch(data + rows * rowBytes, byteCount: min(sliceRows, matrix.rows - first - rows) * rowBytes)
            }
            matrix.kernel.multiply(weights: data, rows: rows, columns: matrix.columns, input: input, tokens: tokens,
                                   output: sliceOutput, scratch: matmulScratch, pool: pool)
            for token in 0..<tokens {
                (output + token * matrix.rows + first).update(from: sliceOutput + token * rows, count: rows)
            }
            matrix.streamedFrom?.releaseResidentPages(around: data, byteCount: rows * rowBytes)
            first += rows
        }
    }

    /// Rotates the query heads (and the key heads, when given) of every row by its position.
    /// One table per position serves the queries and the keys.
    func rotate(queries: UnsafeMutablePointer<Float>, headCount: Int, keys: UnsafeMutablePointer<Float>?, keyHeadCount: Int,
                headLength: Int, rotary: RotaryEmbedding, tokens: Int, placement: RowPlacement) {
        let dimensions = extent.rotaryDimensionCount, rotaryTables = self.rotaryTables
        forRows(tokens) { range, thread in
            let cosines = rotaryTables + thread * 2 * dimensions
            let sines = cosines + dimensions
            for token in range {
                rotary.tables(position: placement.position(token), cosines: cosines, sines: sines)
                rotary.rotate(queries + token * headCount * headLength, headCount: headCount, headLength: headLength,
                              cosines: cosines, sines: sines)
                if let keys {
                    rotary.rotate(keys + token * keyHeadCount * headLength, headCount: keyHeadCount, headLength: headLength,
                                  cosines: cosines, sines: sines)
                }
            }
        }
    }

    /// Writes every row's keys and values (`heads.keyWidth` and `heads.valueWidth` floats) into
    /// its cache's layer `heads.cacheLayer` at its position: half precision, or quantized blocks.
    func storeKeysAndValues(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, heads: AttentionHeads, tokens: Int,
                            placement: RowPlacement) {
        let keyWidth = heads.keyWidth, valueWidth = heads.valueWidth, layer = heads.cacheLayer
        if placement.cache(0).type != .f16 {
            for token in 0..<tokens {
                let cache = placement.cache(token), position = placement.position(token)
                let type = cache.type.tensorType
                Kernels.quantize(keys + token * keyWidth, count: keyWidth, as: type, into: cache.keyBytes(layer: layer, position: position))
                Kernels.quantize(values + token * valueWidth, count: valueWidth, as: type,
                                 into: cache.valueBytes(layer: layer, position: position))
            }
            return
        }
        forRows(tokens) { range, _ in
            for token in range {
                let cache = placement.cache(token), position = placement.position(token)
                let keyRow = cache.keyRow(layer: layer, position: position)
                let keySource = keys + token * keyWidth
                for i in 0..<keyWidth { keyRow[i] = Float16(keySource[i]) }
                let valueRow = cache.valueRow(layer: layer, position: position)
                let valueSource = values + token * valueWidth
                for i in 0..<valueWidth { valueRow[i] = Float16(valueSource[i]) }
            }
        }
    }

    /// Scaled dot-product attention of every query head of every row over the cached positions it
    /// may see (causal, and within the window where the layer has one), into `output` (rows of
    /// heads × value length). Like llama.cpp without flash attention, the query and the softmax
    /// weights are rounded to half precision before their products with the half-precision cache.
    ///
    /// A batch scores the query heads that share a key-value head together (up to the extent's
    /// query block), reading and widening each key once for all of them; a decode step spreads
    /// its heads one by one over the threads. Either way each score has the same arithmetic.
    func attend(queries: UnsafePointer<Float>, heads: AttentionHeads, tokens: Int, placement: RowPlacement,
                output: UnsafeMutablePointer<Float>) {
        let headCount = heads.headCount, keyLength = heads.keyLength, valueLength = heads.valueLength
        let group = heads.headCount / heads.keyValueHeadCount
        let window = heads.window, scale = heads.scale, layer = heads.cacheLayer
        let scores = self.scores, headScratch = self.headScratch
        let capacity = contextLength
        let scratchStride = Self.headScratchFloats(extent)
        let cacheType = placement.cache(0).type
        let quantized = cacheType != .f16
        let elementType = cacheType.tensorType
        let keyHeadBytes = cacheType.rowBytes(keyLength), valueHeadBytes = cacheType.rowBytes(valueLength)
        let grouped = !quantized && keyLength % 16 == 0 && tokens >= 2 * pool.threadCount
        let block = grouped ? min(extent.queryBlock, group) : 1
        let blocksPerGroup = (group + block - 1) / block
        let tasksPerToken = heads.keyValueHeadCount * blocksPerGroup
        pool.parallelFor(tokens * tasksPerToken) { range, thread in
            let threadScores = scores + thread * extent.queryBlock * capacity
            let queryBlock = headScratch + thread * scratchStride
            let keyFloats = queryBlock + extent.queryBlock * keyLength
            let valueFloats = keyFloats + keyLength
            for task in range {
                // Causal rows grow with the position: tokens are dealt from both ends (0, n−1, 1,
                // n−2, …) so that contiguous ranges of tasks carry equal work on every thread.
                let dealt = task / tasksPerToken
                let token = dealt % 2 == 0 ? dealt / 2 : tokens - 1 - dealt / 2
                let keyValueHead = task % tasksPerToken / blocksPerGroup
                let firstHead = keyValueHead * group + task % blocksPerGroup * block
                let queryCount = min(block, (keyValueHead + 1) * group - firstHead)
                let cache = placement.cache(token)
                let position = placement.position(token)
                let first = window.map { max(0, position - $0 + 1) } ?? 0
                let visibleCount = position - first + 1
                let source = queries + (token * headCount + firstHead) * keyLength
                for i in 0..<(queryCount * keyLength) { queryBlock[i] = Float(Float16(source[i])) }

                if quantized {
                    let query = queryBlock, out = output + (token * headCount + firstHead) * valueLength
                    for visible in first...position {
                        let key = cache.keyBytes(layer: layer, position: visible) + keyValueHead * keyHeadBytes
                        Kernels.dequantize(elementType, source: key, into: keyFloats, count: keyLength)
                        threadScores[visible - first] = Operations.dot(query, keyFloats, count: keyLength) * scale
                    }
                    Operations.attentionSoftmax(threadScores, count: visibleCount, firstCell: first)
                    for i in 0..<valueLength { out[i] = 0 }
                    for visible in first...position {
                        let weight = Float(Float16(threadScores[visible - first]))
                        let value = cache.valueBytes(layer: layer, position: visible) + keyValueHead * valueHeadBytes
                        Kernels.dequantize(elementType, source: value, into: valueFloats, count: valueLength)
                        for i in 0..<valueLength { out[i] += weight * valueFloats[i] }
                    }
                    continue
                }
                let keyWidth = cache.keyWidth, valueWidth = cache.valueWidth
                let keyBase = cache.keyRow(layer: layer, position: 0) + keyValueHead * keyLength
                if keyLength % 16 == 0 {
                    AttentionKernels.scoreHalfKeys(queries: queryBlock, queryCount: queryCount, keys: keyBase + first * keyWidth,
                                                   keyStride: keyWidth, count: visibleCount, length: keyLength, scale: scale,
                                                   scores: threadScores, scoreStride: capacity)
                } else {
                    for visible in first...position {
                        let key = keyBase + visible * keyWidth
                        for i in 0..<keyLength { keyFloats[i] = Float(key[i]) }
                        threadScores[visible - first] = Operations.dot(queryBlock, keyFloats, count: keyLength) * scale
                    }
                }
                for index in 0..<queryCount {
                    let weights = threadScores + index * capacity
                    Operations.attentionSoftmax(weights, count: visibleCount, firstCell: first)
                    // The weights rounded to half precision once, then summed over the visible values.
                    for i in 0..<visibleCount { weights[i] = Float(Float16(weights[i])) }
                }
                // Each query's values alone: widening a tile of value rows once for the whole
                // block measured no faster (the loop is bound by its two loads per product).
                let valueBase = cache.valueRow(layer: layer, position: 0) + keyValueHead * valueLength
                for index in 0..<queryCount {
                    AttentionKernels.weightHalfValues(weights: threadScores + index * capacity, values: valueBase + first * valueWidth,
                                                      valueStride: valueWidth, count: visibleCount, firstCell: first, length: valueLength,
                                                      output: output + (token * headCount + firstHead + index) * valueLength)
                }
            }
        }
    }

    /// A gated feed-forward's activation in place: `gate = activation(gate) ⊙ up`, `rows` rows of `width`.
    func activate(_ activation: ArchitectureTraits.FeedForwardActivation, gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int) {
        forRows(rows) { range, _ in
            let offset = range.lowerBound * width
            switch activation {
            case .swiGLU: Operations.swiGLU(gate: gate + offset, up: up + offset, rows: range.count, width: width)
            case .geGLU: Operations.geGLU(gate: gate + offset, up: up + offset, count: range.count * width)
            }
        }
    }

    /// A gated feed-forward block: `down · (activation(gate · x) ⊙ (up · x))` of `tokens` rows of
    /// `input` into `output`; `gateRows` and `upRows` are scratch of tokens × the block's width.
    func feedForward(gate: WeightMatrix, up: WeightMatrix, down: WeightMatrix, activation: ArchitectureTraits.FeedForwardActivation, input: UnsafePointer<Float>,
                     tokens: Int, gateRows: UnsafeMutablePointer<Float>, upRows: UnsafeMutablePointer<Float>,
                     output: UnsafeMutablePointer<Float>) {
        project(together: [(gate, gateRows), (up, upRows)], input: input, tokens: tokens)
        activate(activation, gate: gateRows, up: upRows, rows: tokens, width: gate.rows)
        project(down, input: gateRows, tokens: tokens, output: output)
    }

    /// Adds `rows` rows of a block's output (RMS-normalized in place first by `postNorm` when
    /// given) to the residual stream `hidden`.
    func addToResidual(_ block: UnsafeMutablePointer<Float>, normalizedBy postNorm: [Float]?, into hidden: UnsafeMutablePointer<Float>,
                       rows: Int, length: Int) {
        let epsilon = self.epsilon
        forRows(rows) { range, _ in
            if let postNorm {
                for row in range {
                    let vector = block + row * length
                    Operations.rmsNorm(vector, weight: postNorm, output: vector, count: length, epsilon: epsilon)
                }
            }
            Operations.add(block + range.lowerBound * length, into: hidden + range.lowerBound * length, count: range.count * length)
        }
    }

    /// Brings `matrices` (the next layer's) in ahead of use when they stream.
    func prefetch(_ matrices: [WeightMatrix]) {
        for matrix in matrices { matrix.prefetch() }
    }

    /// Drops matrices from memory after use when they stream.
    func release(_ matrices: [WeightMatrix]) {
        for matrix in matrices { matrix.releasePages() }
    }
}

/// Buffers of floats, zeroed, that live as long as their owner (a custom forward pass).
final class FloatBuffers {
    private var buffers: [UnsafeMutablePointer<Float>] = []

    deinit { for buffer in buffers { buffer.deallocate() } }

    /// A new buffer of `count` floats.
    func make(_ count: Int) -> UnsafeMutablePointer<Float> {
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
        buffers.append(pointer)
        return pointer
    }
}

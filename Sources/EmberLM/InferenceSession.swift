import EmberCore
import EmberGGUF
import EmberKernels
import Foundation

/// Which positions of an evaluated batch need logits.
public enum LogitSelection: Sendable, Equatable {
    /// Only the last token (generation).
    case last
    /// Every token (teacher forcing, perplexity).
    case all
    /// None (the prompt of a conversation whose logits are not needed).
    case none
    /// Every token from this index of the evaluated list on (perplexity scores the second half).
    case from(Int)
}

/// One model's KV cache, scratch buffers and thread pool: the state of one sequence.
///
/// Not thread-safe: one owner thread calls `evaluate`. Scratch is allocated once for
/// `batchSize` tokens, so evaluating allocates nothing.
public final class InferenceSession {
    public let model: TransformerModel
    public let cache: KeyValueCache
    public let batchSize: Int
    public let pool: ThreadPool
    /// Rows of logits computed at once.
    let logitGroupSize = 16

    private let configuration: ModelConfiguration
    private let hiddenState: UnsafeMutablePointer<Float>      // batch × embedding
    private let normalized: UnsafeMutablePointer<Float>       // batch × max(embedding, heads × value length)
    private let queries: UnsafeMutablePointer<Float>          // batch × heads × key length
    private let keys: UnsafeMutablePointer<Float>             // batch × kv heads × key length
    private let values: UnsafeMutablePointer<Float>           // batch × kv heads × value length
    private let attentionOutput: UnsafeMutablePointer<Float>  // batch × heads × value length
    private let projected: UnsafeMutablePointer<Float>        // batch × embedding
    private let gate: UnsafeMutablePointer<Float>             // batch × feed-forward
    private let up: UnsafeMutablePointer<Float>               // batch × feed-forward
    private let logits: UnsafeMutablePointer<Float>           // logit group × vocabulary
    private let sliceLogits: UnsafeMutablePointer<Float>      // logit group × streamed output rows
    private let scores: UnsafeMutablePointer<Float>           // threads × capacity
    private let queryHalf: UnsafeMutablePointer<Float>        // threads × 2 × key length (query, one key row)
    private let rotaryTables: UnsafeMutablePointer<Float>     // 2 × rope dimensions
    private let matmulScratch: UnsafeMutableRawPointer
    private let matmulScratchBytes: Int
    private let rotary: [RotaryEmbedding]
    /// Buffers and routing of the mixture-of-experts blocks; nil for a dense model.
    private let expertBlock: MixtureOfExpertsBlock?
    /// The forward pass of an architecture that runs its own layers.
    private var customForward: (any CustomForwardPass)?

    /// Whether `pool` was made for this session alone (its workspaces count as this session's scratch).
    private let ownsPool: Bool

    /// Creates a session for up to `contextLength` positions, evaluating at most `batchSize` tokens
    /// per step on `threadCount` threads — those of `pool` when given (a pool shared by several
    /// sessions, used by one of them at a time), else a pool of its own.
    public init(model: TransformerModel, contextLength: Int, batchSize: Int = 512, threadCount: Int,
                keyValueType: KeyValueType = .f16, pool shared: ThreadPool? = nil) {
        let configuration = model.configuration
        self.model = model
        self.configuration = configuration
        self.batchSize = max(1, min(batchSize, contextLength))
        self.pool = shared ?? ThreadPool(threadCount: max(1, threadCount))
        ownsPool = shared == nil
        let cacheShape = model.keyValueCacheShape
        cache = KeyValueCache(
            layerCount: cacheShape.layerCount, capacity: contextLength,
            keyWidth: cacheShape.keyWidth, valueWidth: cacheShape.valueWidth, type: keyValueType)

        let batch = self.batchSize
        let embedding = configuration.embeddingLength
        let attentionWidth = configuration.headCount * configuration.valueLength
        hiddenState = .allocate(capacity: batch * embedding)
        normalized = .allocate(capacity: batch * max(embedding, attentionWidth))
        queries = .allocate(capacity: batch * configuration.headCount * configuration.keyLength)
        keys = .allocate(capacity: batch * cache.keyWidth)
        values = .allocate(capacity: batch * cache.valueWidth)
        attentionOutput = .allocate(capacity: batch * attentionWidth)
        projected = .allocate(capacity: batch * embedding)
        // A mixture-of-experts model runs no dense feed-forward (its experts have their own buffers).
        let denseFeedForward = model.traits.mixtureOfExperts == nil ? configuration.feedForwardLength : 1
        gate = .allocate(capacity: batch * denseFeedForward)
        up = .allocate(capacity: batch * denseFeedForward)
        logits = .allocate(capacity: logitGroupSize * configuration.vocabularySize)
        sliceLogits = .allocate(capacity: model.options.streamWeights ? logitGroupSize * max(1024, (4 << 20) / max(1, model.output.rowBytes)) : 1)
        scores = .allocate(capacity: pool.threadCount * contextLength)
        queryHalf = .allocate(capacity: pool.threadCount * (2 * configuration.keyLength + configuration.valueLength))
        rotaryTables = .allocate(capacity: 2 * pool.threadCount * configuration.ropeDimensionCount)
        var scratchBytes = 0
        for matrix in model.matrices {
            let tokens = matrix.name == model.output.name ? logitGroupSize : batch
            scratchBytes = max(scratchBytes, Kernels.matmulScratchBytes(type: matrix.type, columns: matrix.columns, tokens: tokens))
        }
        matmulScratchBytes = scratchBytes
        matmulScratch = .allocate(byteCount: max(scratchBytes, 64), alignment: 64)
        expertBlock = model.traits.mixtureOfExperts.map {
            MixtureOfExpertsBlock(traits: $0, embedding: embedding, batchSize: batch)
        }
        let frequencyFactors = model.traits.rotaryFrequencyFactors?.factors(contextLength: contextLength)
        rotary = model.traits.layers.map {
            RotaryEmbedding(dimensionCount: configuration.ropeDimensionCount, base: $0.ropeFrequencyBase,
                            layout: model.traits.rotaryLayout, scaling: model.traits.ropeScaling,
                            frequencyFactors: frequencyFactors)
        }
        customForward = model.customLayers?.makeForwardPass(model: model, contextLength: contextLength,
                                                            batchSize: self.batchSize, pool: pool)
    }

    deinit {
        for pointer in [hiddenState, normalized, queries, keys, values, attentionOutput, projected, gate, up, logits,
                        sliceLogits, scores, queryHalf, rotaryTables] {
            pointer.deallocate()
        }
        matmulScratch.deallocate()
    }

    /// Bytes of scratch and activations this session allocated (the KV cache aside; a shared
    /// pool's workspaces are the pool's).
    public var scratchByteCount: Int {
        Self.scratchByteCount(configuration: configuration, file: model.file, contextLength: cache.capacity,
                              batchSize: batchSize, threadCount: pool.threadCount, streamWeights: model.options.streamWeights)
            - (ownsPool ? 0 : Self.threadPoolByteCount(threadCount: pool.threadCount))
    }

    /// Bytes a thread pool of `threadCount` threads holds for its kernels (each thread's workspace).
    public static func threadPoolByteCount(threadCount: Int) -> Int { threadCount * ThreadPool.workspaceBytes }

    /// Bytes of scratch and activations a session of these dimensions allocates.
    static func scratchByteCount(configuration c: ModelConfiguration, file: GGUFFile, contextLength: Int, batchSize: Int,
                                 threadCount: Int, streamWeights: Bool) -> Int {
        let batch = max(1, min(batchSize, contextLength))
        let keyWidth = c.keyValueHeadCount * c.keyLength, valueWidth = c.keyValueHeadCount * c.valueLength
        let logitGroupSize = 16
        let denseFeedForward = MixtureOfExpertsBlock.traits(file: file, configuration: c) == nil ? c.feedForwardLength : 1
        var floats = batch * c.embeddingLength * 2
            + batch * max(c.embeddingLength, c.headCount * c.valueLength)
            + batch * c.headCount * c.keyLength + batch * (keyWidth + valueWidth)
            + batch * c.headCount * c.valueLength + 2 * batch * denseFeedForward
            + logitGroupSize * c.vocabularySize + threadCount * (contextLength + 2 * c.keyLength + c.valueLength + 2 * c.ropeDimensionCount)
        var matmulBytes = 64
        // Expert tensors (3-D) are multiplied one expert at a time with up to a batch of tokens.
        for tensor in file.tensors where tensor.dimensions.count >= 2 && tensor.rowCount > 1 {
            let isOutput = tensor.name == "output.weight" || (tensor.name == "token_embd.weight" && file.tensor(named: "output.weight") == nil)
            matmulBytes = max(matmulBytes, Kernels.matmulScratchBytes(type: tensor.type, columns: tensor.rowLength,
                                                                      tokens: isOutput ? logitGroupSize : batch))
            if isOutput && streamWeights {
                floats += logitGroupSize * max(1024, (4 << 20) / max(1, tensor.byteCount / max(1, tensor.rowCount)))
            }
        }
        let custom = (ArchitectureRegistry.definition(for: c.architecture) as? any CustomForwardArchitecture.Type)?
            .scratchByteCount(configuration: c, file: file, contextLength: contextLength, batchSize: batch, threadCount: threadCount) ?? 0
        return floats * MemoryLayout<Float>.size + matmulBytes + threadPoolByteCount(threadCount: threadCount)
            + MixtureOfExpertsBlock.byteCount(file: file, configuration: c, batchSize: batch) + custom
    }

    /// What the mixture-of-experts blocks have read since the session was made or the statistics
    /// reset (zero for a dense model).
    public var expertStatistics: ExpertStatistics { expertBlock?.statistics ?? ExpertStatistics() }

    public func resetExpertStatistics() { expertBlock?.resetStatistics() }

    /// Number of positions in the cache.
    public var position: Int { cache.count }

    /// Forgets the sequence.
    public func reset() { cache.clear() }

    /// Runs `tokens` through the model after the cached positions, in batches of `batchSize`,
    /// and calls `body(index, logits)` for the selected indexes of `tokens` in order.
    public func evaluate(_ tokens: [Int32], logits selection: LogitSelection,
                         _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void = { _, _ in }) throws {
        guard !tokens.isEmpty else { return }
        guard cache.count + tokens.count <= cache.capacity else {
            throw LanguageModelError(.contextFull,
                "context is full: \(cache.count) + \(tokens.count) tokens exceed the context of \(cache.capacity)")
        }
        let vocabulary = configuration.vocabularySize
        for token in tokens where token < 0 || Int(token) >= vocabulary {
            throw LanguageModelError(.invalidInput, "token id \(token) is outside the vocabulary (0..<\(vocabulary))")
        }
        let firstPosition = cache.count
        var start = 0
        while start < tokens.count {
            let count = min(batchSize, tokens.count - start)
            tokens[start..<(start + count)].withUnsafeBufferPointer { batch in
                forward(batch, placement: RowPlacement(cache: cache, firstPosition: cache.count))
            }
            let wanted: Range<Int>
            switch selection {
            case .none: wanted = 0..<0
            case .all: wanted = 0..<count
            case .last: wanted = (start + count == tokens.count) ? (count - 1)..<count : 0..<0
            case .from(let first): wanted = min(max(first - start, 0), count)..<count
            }
            var row = wanted.lowerBound
            while row < wanted.upperBound {
                let group = min(logitGroupSize, wanted.upperBound - row)
                computeLogits(hiddenRows: normalized + row * configuration.embeddingLength, count: group)
                for index in 0..<group {
                    let values = UnsafeBufferPointer(start: logits + index * vocabulary, count: vocabulary)
                    try Self.checkFinite(values, position: firstPosition + start + row + index)
                    try body(start + row + index, values)
                }
                row += group
            }
            start += count
        }
    }

    /// Throws when a row of logits holds NaN or infinity (weights or activations gone non-finite),
    /// naming `position`, so that no sampler, argmax or JSON writer ever sees such a value. One
    /// vectorized pass over the bits: a float is non-finite exactly when its exponent bits are all ones.
    static func checkFinite(_ logits: UnsafeBufferPointer<Float>, position: Int) throws(LanguageModelError) {
        guard let base = logits.baseAddress else { return }
        let exponent: UInt32 = 0x7F80_0000
        let count = logits.count
        var first = SIMD8<UInt32>(), second = SIMD8<UInt32>()
        var index = 0
        let raw = UnsafeRawPointer(base)
        while index + 16 <= count {
            first = pointwiseMax(first, raw.loadUnaligned(fromByteOffset: index * 4, as: SIMD8<UInt32>.self) & exponent)
            second = pointwiseMax(second, raw.loadUnaligned(fromByteOffset: index * 4 + 32, as: SIMD8<UInt32>.self) & exponent)
            index += 16
        }
        var largest = pointwiseMax(first, second).max()
        while index < count {
            largest = max(largest, base[index].bitPattern & exponent)
            index += 1
        }
        guard largest == exponent else { return }
        let bad = logits.firstIndex { !$0.isFinite } ?? 0
        throw LanguageModelError(.nonFinite,
            "the model produced a non-finite logit (\(logits[bad]) for token \(bad)) at position \(position): its weights or activations hold NaN or infinity")
    }

    /// Decodes one token of each of several sequences in one pass over the weights: row `i` is
    /// `tokens[i]` at the next position of `sessions[i]`'s cache. Calls `body(i, logits)` for
    /// every row in order.
    ///
    /// This is how background work shares a step: decoding is bound by reading the weights, so
    /// four replies decoded together cost little more time and energy than one. Each row is
    /// computed as it would be alone (same kernels per row, its own cache), so the tokens are
    /// those of decoding each session separately. The sessions must share one model and have
    /// room for one more position; the first one's scratch and threads do the work.
    public static func decode(_ tokens: [Int32], sessions: [InferenceSession],
                              _ body: (Int, UnsafeBufferPointer<Float>) throws -> Void) throws {
        guard tokens.count == sessions.count else {
            throw LanguageModelError(.invalidInput, "a batched decode step needs one token per session (\(tokens.count) tokens, \(sessions.count) sessions)")
        }
        guard let lead = sessions.first else { return }
        for (index, session) in sessions.enumerated() {
            guard session.model === lead.model else {
                throw LanguageModelError(.invalidInput, "a batched decode step needs sessions of one model")
            }
            guard session.cache.count < session.cache.capacity else {
                throw LanguageModelError(.contextFull, "context is full: session \(index) holds \(session.cache.count) of \(session.cache.capacity) positions")
            }
            guard sessions[..<index].allSatisfy({ $0 !== session }) else {
                throw LanguageModelError(.invalidInput, "a batched decode step has session \(index) twice")
            }
            let token = tokens[index]
            guard token >= 0 && Int(token) < lead.configuration.vocabularySize else {
                throw LanguageModelError(.invalidInput, "token id \(token) is outside the vocabulary (0..<\(lead.configuration.vocabularySize))")
            }
        }
        // Architectures with their own layer loop, mixed cache types, longer contexts than the
        // lead's scratch or more rows than a batch decode one sequence at a time (same results).
        let shareable = lead.customForward == nil && tokens.count <= lead.batchSize
            && sessions.allSatisfy { $0.cache.type == lead.cache.type && $0.cache.capacity <= lead.cache.capacity }
        guard shareable else {
            for (index, session) in sessions.enumerated() {
                try session.evaluate([tokens[index]], logits: .last) { _, logits in try body(index, logits) }
            }
            return
        }
        let placement = RowPlacement(caches: sessions.map(\.cache))
        let positions = sessions.map(\.position)
        tokens.withUnsafeBufferPointer { lead.forward($0, placement: placement) }
        let vocabulary = lead.configuration.vocabularySize
        var row = 0
        while row < tokens.count {
            let group = min(lead.logitGroupSize, tokens.count - row)
            lead.computeLogits(hiddenRows: lead.normalized + row * lead.configuration.embeddingLength, count: group)
            for index in 0..<group {
                let values = UnsafeBufferPointer(start: lead.logits + index * vocabulary, count: vocabulary)
                try checkFinite(values, position: positions[row + index])
                try body(row + index, values)
            }
            row += group
        }
    }

    /// Where the rows of a forward batch go in the KV cache: consecutive positions of one
    /// sequence (a prompt or a decode step), or the next position of a different sequence each
    /// (a batched decode step).
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

    /// The transformer over one batch of rows placed by `placement` (for a prompt, positions
    /// `cache.count ..< cache.count + tokens.count`). Leaves the final-normed hidden states in
    /// `normalized` and advances the caches.
    private func forward(_ tokens: UnsafeBufferPointer<Int32>, placement: RowPlacement) {
        if let customForward {
            customForward.forward(tokens, cache: cache, output: normalized)
            cache.count += tokens.count
            return
        }
        let c = configuration
        let traits = model.traits
        let count = tokens.count
        let embedding = c.embeddingLength

        // Embeddings.
        model.lookUpEmbeddings(tokens, into: hiddenState)
        if let scale = traits.embeddingScale {
            Operations.scale(hiddenState, by: scale, count: count * embedding)
        }

        let streaming = model.options.streamWeights
        if streaming { prefetchLayer(0) }
        for (layerIndex, layer) in model.layers.enumerated() {
            if streaming { prefetchLayer(layerIndex + 1) }
            // Attention block.
            forRows(count) { rows, _ in
                for row in rows {
                    Operations.rmsNorm(hiddenState + row * embedding, weight: layer.attentionNorm,
                                       output: normalized + row * embedding, count: embedding, epsilon: c.normEpsilon)
                }
            }
            multiply(layer.query, input: normalized, tokens: count, output: queries)
            multiply(layer.key, input: normalized, tokens: count, output: keys)
            multiply(layer.value, input: normalized, tokens: count, output: values)
            if let queryNorm = layer.queryNorm, let keyNorm = layer.keyNorm {
                normalizeHeads(queries, weight: queryNorm, heads: count * c.headCount)
                normalizeHeads(keys, weight: keyNorm, heads: count * c.keyValueHeadCount)
            }
            applyRotary(layer: layerIndex, tokens: count, placement: placement)
            storeKeysAndValues(layer: layerIndex, tokens: count, placement: placement)
            attend(layer: layerIndex, tokens: count, placement: placement)
            multiply(layer.attentionOutput, input: attentionOutput, tokens: count, output: projected)
            addToResidual(normalizedBy: layer.postAttentionNorm, tokens: count)

            // Feed-forward block.
            forRows(count) { rows, _ in
                for row in rows {
                    Operations.rmsNorm(hiddenState + row * embedding, weight: layer.feedForwardNorm,
                                       output: normalized + row * embedding, count: embedding, epsilon: c.normEpsilon)
                }
            }
            if let experts = layer.experts, let expertBlock {
                expertBlock.run(experts, input: normalized, tokens: count, output: projected,
                                streamingFile: streaming ? model.file : nil) { matrix, input, tokens, output, expert in
                    multiply(matrix, input: input, tokens: tokens, output: output, rowByRow: expert)
                }
            } else {
                multiply(layer.gate!, input: normalized, tokens: count, output: gate)
                multiply(layer.up!, input: normalized, tokens: count, output: up)
                let width = c.feedForwardLength
                forRows(count) { rows, _ in
                    let offset = rows.lowerBound * width
                    switch traits.activation {
                    case .swiGLU: Operations.swiGLU(gate: gate + offset, up: up + offset, rows: rows.count, width: width)
                    case .geGLU: Operations.geGLU(gate: gate + offset, up: up + offset, count: rows.count * width)
                    }
                }
                multiply(layer.down!, input: gate, tokens: count, output: projected)
            }
            addToResidual(normalizedBy: layer.postFeedForwardNorm, tokens: count)
            if streaming { releaseLayer(layerIndex) }
        }

        model.outputNorm.withUnsafeBufferPointer { weight in
            for row in 0..<count {
                Operations.rmsNorm(hiddenState + row * embedding, weight: weight.baseAddress,
                                   output: normalized + row * embedding, count: embedding, epsilon: c.normEpsilon)
            }
        }
        placement.advance(rows: count)
    }

    /// `rowByRow`: llama.cpp multiplies this matrix one dot product at a time (`mul_mat_id`, the
    /// experts) rather than through tinyBLAS, which adds F32 products up in another order.
    @inline(__always)
    private func multiply(_ matrix: WeightMatrix, input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>,
                          rowByRow: Bool = false) {
        if let interleaved = matrix.interleaved {
            Kernels.matmul(interleaved: interleaved, input: input, tokens: tokens, output: output, scratch: matmulScratch, pool: pool)
            return
        }
        if model.options.streamWeights {
            // Same sums as the rearranged kernels, so streaming gives the same tokens.
            Kernels.matmulInInterleavedOrder(weights: matrix.data, type: matrix.type, rows: matrix.rows, columns: matrix.columns,
                                             input: input, tokens: tokens, output: output, scratch: matmulScratch, pool: pool,
                                             rowByRow: rowByRow, llamaOrder: model.llamaOrder)
            return
        }
        Kernels.matmul(weights: matrix.data, type: matrix.type, rows: matrix.rows, columns: matrix.columns,
                       input: input, tokens: tokens, output: output, scratch: matmulScratch, pool: pool, rowByRow: rowByRow)
    }

    private func computeLogits(hiddenRows: UnsafePointer<Float>, count: Int) {
        let output = model.output
        defer {
            if let cap = model.traits.finalLogitSoftcapping { Operations.softcap(logits, count: count * output.rows, cap: cap) }
        }
        let streaming = model.options.streamWeights
        if !streaming {
            multiply(output, input: hiddenRows, tokens: count, output: logits)
            return
        }
        // The output projection (often the embedding table) streams in slices of rows.
        let sliceRows = max(1024, (4 << 20) / max(1, output.rowBytes)) / 32 * 32
        var first = 0
        while first < output.rows {
            let rows = min(sliceRows, output.rows - first)
            let data = output.data + first * output.rowBytes
            if first + rows < output.rows {
                model.file.prefetch(data + rows * output.rowBytes, byteCount: min(sliceRows, output.rows - first - rows) * output.rowBytes)
            }
            // Logits of this slice for every token go into a temporary, then to their rows.
            Kernels.matmulInInterleavedOrder(weights: data, type: output.type, rows: rows, columns: output.columns,
                                             input: hiddenRows, tokens: count, output: sliceLogits, scratch: matmulScratch, pool: pool,
                                             llamaOrder: model.llamaOrder)
            for token in 0..<count {
                (logits + token * output.rows + first).update(from: sliceLogits + token * rows, count: rows)
            }
            model.file.releaseResidentPages(around: data, byteCount: rows * output.rowBytes)
            first += rows
        }
    }

    private func prefetchLayer(_ index: Int) {
        guard index < model.layers.count else { return }
        for matrix in model.layerMatrices(index) { model.file.prefetch(matrix.data, byteCount: matrix.byteCount) }
    }

    private func releaseLayer(_ index: Int) {
        for matrix in model.layerMatrices(index) { model.file.releaseResidentPages(around: matrix.data, byteCount: matrix.byteCount) }
    }

    /// RMS-normalizes `heads` consecutive head vectors of key length with a shared weight.
    private func normalizeHeads(_ vectors: UnsafeMutablePointer<Float>, weight: [Float], heads: Int) {
        let length = configuration.keyLength
        weight.withUnsafeBufferPointer { weight in
            forRows(heads) { range, _ in
                for head in range {
                    let vector = vectors + head * length
                    Operations.rmsNorm(vector, weight: weight.baseAddress, output: vector, count: length, epsilon: configuration.normEpsilon)
                }
            }
        }
    }

    private func applyRotary(layer: Int, tokens: Int, placement: RowPlacement) {
        let c = configuration
        let rotary = self.rotary[layer]
        forRows(tokens) { range, thread in
            let cosines = rotaryTables + thread * 2 * c.ropeDimensionCount
            let sines = cosines + c.ropeDimensionCount
            for token in range {
                let position = placement.position(token)
                // One table per position serves the queries and the keys.
                rotary.tables(position: position, cosines: cosines, sines: sines)
                rotary.rotate(queries + token * c.headCount * c.keyLength, headCount: c.headCount, headLength: c.keyLength,
                              cosines: cosines, sines: sines)
                rotary.rotate(keys + token * cache.keyWidth, headCount: c.keyValueHeadCount, headLength: c.keyLength,
                              cosines: cosines, sines: sines)
                if let queryScale = model.traits.queryScale {
                    Operations.scale(queries + token * c.headCount * c.keyLength, by: queryScale, count: c.headCount * c.keyLength)
                }
                if let temperature = model.traits.attentionTemperature {
                    let factor = Float(log(floor(Double(position) / Double(temperature.floor)) + 1)) * temperature.scale + 1
                    Operations.scale(queries + token * c.headCount * c.keyLength, by: factor, count: c.headCount * c.keyLength)
                }
            }
        }
    }

    /// Adds a block's output (`projected`, RMS-normalized first when the architecture has a
    /// post-norm) to the residual stream `hiddenState`.
    private func addToResidual(normalizedBy postNorm: [Float]?, tokens count: Int) {
        let embedding = configuration.embeddingLength, epsilon = configuration.normEpsilon
        let projected = self.projected, hiddenState = self.hiddenState
        forRows(count) { rows, _ in
            if let postNorm {
                for row in rows {
                    let vector = projected + row * embedding
                    Operations.rmsNorm(vector, weight: postNorm, output: vector, count: embedding, epsilon: epsilon)
                }
            }
            Operations.add(projected + rows.lowerBound * embedding, into: hiddenState + rows.lowerBound * embedding,
                           count: rows.count * embedding)
        }
    }

    /// Runs `body` over ranges of `count` rows on the pool when a prompt batch has enough rows to
    /// share, inline for a decode step. Each row is computed as it would be alone: same results.
    @inline(__always)
    private func forRows(_ count: Int, _ body: (Range<Int>, Int) -> Void) {
        if count >= 16 { pool.parallelFor(count, body) } else { body(0..<count, 0) }
    }

    private func storeKeysAndValues(layer: Int, tokens: Int, placement: RowPlacement) {
        if cache.type != .f16 {
            let type = cache.type.tensorType
            for token in 0..<tokens {
                let cache = placement.cache(token), position = placement.position(token)
                Kernels.quantize(keys + token * cache.keyWidth, count: cache.keyWidth, as: type,
                                 into: cache.keyBytes(layer: layer, position: position))
                Kernels.quantize(values + token * cache.valueWidth, count: cache.valueWidth, as: type,
                                 into: cache.valueBytes(layer: layer, position: position))
            }
            return
        }
        let keys = self.keys, values = self.values
        forRows(tokens) { range, _ in
            for token in range {
                let cache = placement.cache(token), position = placement.position(token)
                let keyRow = cache.keyRow(layer: layer, position: position)
                let keySource = keys + token * cache.keyWidth
                for i in 0..<cache.keyWidth { keyRow[i] = Float16(keySource[i]) }
                let valueRow = cache.valueRow(layer: layer, position: position)
                let valueSource = values + token * cache.valueWidth
                for i in 0..<cache.valueWidth { valueRow[i] = Float16(valueSource[i]) }
            }
        }
    }

    /// Scaled dot-product attention of every query head of every token over the cached positions it
    /// may see (causal, and within the sliding window where the layer has one). Like llama.cpp without
    /// flash attention, the query and the softmax weights are rounded to half precision before
    /// their products with the half-precision cache.
    private func attend(layer: Int, tokens: Int, placement: RowPlacement) {
        let c = configuration
        let headCount = c.headCount
        let keyLength = c.keyLength
        let valueLength = c.valueLength
        let group = c.headCount / c.keyValueHeadCount
        let window = model.traits.layers[layer].slidingWindow
        let scale = model.traits.attentionScale
        let queries = self.queries
        let output = attentionOutput
        let scores = self.scores
        let queryHalf = self.queryHalf
        let capacity = cache.capacity
        let keyWidth = cache.keyWidth
        let valueWidth = cache.valueWidth

        let quantized = cache.type != .f16
        let elementType = cache.type.tensorType
        let keyHeadBytes = cache.type.rowBytes(keyLength), valueHeadBytes = cache.type.rowBytes(valueLength)
        pool.parallelFor(tokens * headCount) { range, thread in
            let threadScores = scores + thread * capacity
            let query = queryHalf + thread * (2 * keyLength + valueLength)
            let keyFloats = query + keyLength
            let valueFloats = keyFloats + keyLength
            for task in range {
                // Causal rows grow with the position: tokens are dealt from both ends (0, n−1, 1,
                // n−2, …) so that contiguous ranges of tasks carry equal work on every thread.
                let dealt = task / headCount
                let token = dealt % 2 == 0 ? dealt / 2 : tokens - 1 - dealt / 2
                let head = task % headCount
                let keyValueHead = head / group
                let cache = placement.cache(token)
                let position = placement.position(token)
                let first = window.map { max(0, position - $0 + 1) } ?? 0
                let source = queries + (token * headCount + head) * keyLength
                for i in 0..<keyLength { query[i] = Float(Float16(source[i])) }

                if quantized {
                    for visible in first...position {
                        let key = cache.keyBytes(layer: layer, position: visible) + keyValueHead * keyHeadBytes
                        Kernels.dequantize(elementType, source: key, into: keyFloats, count: keyLength)
                        threadScores[visible - first] = Operations.dot(query, keyFloats, count: keyLength) * scale
                    }
                    let visibleCount = position - first + 1
                    Operations.attentionSoftmax(threadScores, count: visibleCount, firstCell: first)
                    let out = output + (token * headCount + head) * valueLength
                    for i in 0..<valueLength { out[i] = 0 }
                    for visible in first...position {
                        let weight = Float(Float16(threadScores[visible - first]))
                        let value = cache.valueBytes(layer: layer, position: visible) + keyValueHead * valueHeadBytes
                        Kernels.dequantize(elementType, source: value, into: valueFloats, count: valueLength)
                        for i in 0..<valueLength { out[i] += weight * valueFloats[i] }
                    }
                    continue
                }
                let keyBase = cache.keyRow(layer: layer, position: 0) + keyValueHead * keyLength
                let visibleCount = position - first + 1
                if keyLength % 16 == 0 {
                    AttentionKernels.scoreHalfKeys(query: query, keys: keyBase + first * keyWidth, keyStride: keyWidth,
                                                   count: visibleCount, length: keyLength, scale: scale, scores: threadScores)
                } else {
                    for visible in first...position {
                        let key = keyBase + visible * keyWidth
                        for i in 0..<keyLength { keyFloats[i] = Float(key[i]) }
                        threadScores[visible - first] = Operations.dot(query, keyFloats, count: keyLength) * scale
                    }
                }
                Operations.attentionSoftmax(threadScores, count: visibleCount, firstCell: first)
                // The weights rounded to half precision once, then summed over the visible values.
                for i in 0..<visibleCount { threadScores[i] = Float(Float16(threadScores[i])) }
                let out = output + (token * headCount + head) * valueLength
                let valueBase = cache.valueRow(layer: layer, position: 0) + keyValueHead * valueLength
                AttentionKernels.weightHalfValues(weights: threadScores, values: valueBase + first * valueWidth, valueStride: valueWidth,
                                                  count: visibleCount, firstCell: first, length: valueLength, output: out)
            }
        }
    }
}

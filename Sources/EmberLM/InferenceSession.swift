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
    let logitGroupSize = ScratchLayout.logitGroupSize

    private let configuration: ModelConfiguration
    /// The buffers below, sized by one layout that `MemoryPlan` counts too.
    private let layout: ScratchLayout
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
    /// The forward building blocks over this session's threads and attention scratch.
    let blocks: ForwardBlocks
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

        let layout = ScratchLayout(configuration: configuration, file: model.file, contextLength: contextLength,
                                   batchSize: batchSize, threadCount: pool.threadCount, streamWeights: model.options.streamWeights)
        self.layout = layout
        hiddenState = .allocate(capacity: max(1, layout.hidden))
        normalized = .allocate(capacity: max(1, layout.normalized))
        queries = .allocate(capacity: max(1, layout.queries))
        keys = .allocate(capacity: max(1, layout.keys))
        values = .allocate(capacity: max(1, layout.values))
        attentionOutput = .allocate(capacity: max(1, layout.attention))
        projected = .allocate(capacity: max(1, layout.projected))
        gate = .allocate(capacity: max(1, layout.gate))
        up = .allocate(capacity: max(1, layout.up))
        logits = .allocate(capacity: max(1, layout.logits))
        blocks = ForwardBlocks(model: model, pool: pool, extent: layout.attentionExtent, contextLength: contextLength,
                               matmulScratchBytes: layout.matmulBytes, sliceOutputFloats: layout.sliceLogits)
        let batch = self.batchSize
        expertBlock = model.traits.mixtureOfExperts.map {
            MixtureOfExpertsBlock(traits: $0, embedding: configuration.embeddingLength, batchSize: batch)
        }
        let frequencyFactors = model.traits.rotaryFrequencyFactors?.factors(contextLength: contextLength)
        rotary = model.traits.layers.map {
            RotaryEmbedding(dimensionCount: configuration.ropeDimensionCount, base: $0.ropeFrequencyBase,
                            layout: model.traits.rotaryLayout, scaling: model.traits.ropeScaling,
                            frequencyFactors: frequencyFactors)
        }
        customForward = model.customLayers?.makeForwardPass(model: model, blocks: blocks, batchSize: self.batchSize)
    }

    deinit {
        for pointer in [hiddenState, normalized, queries, keys, values, attentionOutput, projected, gate, up, logits] {
            pointer.deallocate()
        }
    }

    /// Bytes of scratch and activations this session allocated (the KV cache aside; a shared
    /// pool's workspaces are the pool's).
    public var scratchByteCount: Int {
        layout.byteCount - (ownsPool ? 0 : Self.threadPoolByteCount(threadCount: pool.threadCount))
    }

    /// Bytes a thread pool of `threadCount` threads holds for its kernels (each thread's workspace).
    public static func threadPoolByteCount(threadCount: Int) -> Int { ScratchLayout.threadPoolByteCount(threadCount: threadCount) }

    /// Bytes of scratch and activations a session of these dimensions allocates.
    static func scratchByteCount(configuration c: ModelConfiguration, file: GGUFFile, contextLength: Int, batchSize: Int,
                                 threadCount: Int, streamWeights: Bool) -> Int {
        ScratchLayout(configuration: c, file: file, contextLength: contextLength, batchSize: batchSize, threadCount: threadCount,
                      streamWeights: streamWeights).byteCount
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
        // Mixed cache types, longer contexts than the lead's scratch or more rows than a batch
        // decode one sequence at a time (same results).
        let shareable = tokens.count <= lead.batchSize
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

    /// The transformer over one batch of rows placed by `placement` (for a prompt, positions
    /// `cache.count ..< cache.count + tokens.count`). Leaves the final-normed hidden states in
    /// `normalized` and advances the caches.
    private func forward(_ tokens: UnsafeBufferPointer<Int32>, placement: RowPlacement) {
        if let customForward {
            customForward.forward(tokens, placement: placement, output: normalized)
            placement.advance(rows: tokens.count)
            return
        }
        let c = configuration, traits = model.traits, blocks = self.blocks
        let count = tokens.count, embedding = c.embeddingLength

        model.lookUpEmbeddings(tokens, into: hiddenState)
        if let scale = traits.embeddingScale {
            Operations.scale(hiddenState, by: scale, count: count * embedding)
        }
        if !model.layers.isEmpty { blocks.prefetch(model.layerMatrices(0)) }
        for (layerIndex, layer) in model.layers.enumerated() {
            if layerIndex + 1 < model.layers.count { blocks.prefetch(model.layerMatrices(layerIndex + 1)) }
            let heads = AttentionHeads(headCount: c.headCount, keyValueHeadCount: c.keyValueHeadCount, keyLength: c.keyLength,
                                       valueLength: c.valueLength, window: traits.layers[layerIndex].slidingWindow,
                                       scale: traits.attentionScale, cacheLayer: layerIndex)
            // Attention block.
            blocks.normalizeRows(hiddenState, weight: layer.attentionNorm, output: normalized, rows: count, length: embedding)
            blocks.project(together: [(layer.query, queries), (layer.key, keys), (layer.value, values)], input: normalized, tokens: count)
            if let queryNorm = layer.queryNorm, let keyNorm = layer.keyNorm {
                blocks.normalizeRows(queries, weight: queryNorm, output: queries, rows: count * c.headCount, length: c.keyLength)
                blocks.normalizeRows(keys, weight: keyNorm, output: keys, rows: count * c.keyValueHeadCount, length: c.keyLength)
            }
            blocks.rotate(queries: queries, headCount: c.headCount, keys: keys, keyHeadCount: c.keyValueHeadCount,
                          headLength: c.keyLength, rotary: rotary[layerIndex], tokens: count, placement: placement)
            scaleQueries(tokens: count, placement: placement)
            blocks.storeKeysAndValues(keys: keys, values: values, heads: heads, tokens: count, placement: placement)
            blocks.attend(queries: queries, heads: heads, tokens: count, placement: placement, output: attentionOutput)
            blocks.project(layer.attentionOutput, input: attentionOutput, tokens: count, output: projected)
            blocks.addToResidual(projected, normalizedBy: layer.postAttentionNorm, into: hiddenState, rows: count, length: embedding)

            // Feed-forward block.
            blocks.normalizeRows(hiddenState, weight: layer.feedForwardNorm, output: normalized, rows: count, length: embedding)
            if let experts = layer.experts, let expertBlock {
                expertBlock.run(experts, input: normalized, tokens: count, output: projected,
                                streamsExperts: true) { matrix, input, tokens, output, expert in
                    blocks.project(matrix, input: input, tokens: tokens, output: output, rowByRow: expert)
                }
            } else {
                blocks.feedForward(gate: layer.gate!, up: layer.up!, down: layer.down!, activation: traits.activation,
                                   input: normalized, tokens: count, gateRows: gate, upRows: up, output: projected)
            }
            blocks.addToResidual(projected, normalizedBy: layer.postFeedForwardNorm, into: hiddenState, rows: count, length: embedding)
            blocks.release(model.layerMatrices(layerIndex))
        }
        model.outputNorm.withUnsafeBufferPointer { weight in
            for row in 0..<count {
                Operations.rmsNorm(hiddenState + row * embedding, weight: weight.baseAddress,
                                   output: normalized + row * embedding, count: embedding, epsilon: c.normEpsilon)
            }
        }
        placement.advance(rows: count)
    }

    /// Scales the rotated queries where the architecture does after RoPE: a fixed query scale,
    /// and Llama 4's position-dependent attention temperature.
    private func scaleQueries(tokens: Int, placement: RowPlacement) {
        let width = configuration.headCount * configuration.keyLength
        let queryScale = model.traits.queryScale, temperature = model.traits.attentionTemperature
        guard queryScale != nil || temperature != nil else { return }
        let queries = self.queries
        blocks.forRows(tokens) { range, _ in
            for token in range {
                if let queryScale {
                    Operations.scale(queries + token * width, by: queryScale, count: width)
                }
                if let temperature {
                    let factor = Float(log(floor(Double(placement.position(token)) / Double(temperature.floor)) + 1)) * temperature.scale + 1
                    Operations.scale(queries + token * width, by: factor, count: width)
                }
            }
        }
    }

    private func computeLogits(hiddenRows: UnsafePointer<Float>, count: Int) {
        let output = model.output
        blocks.project(output, input: hiddenRows, tokens: count, output: logits)
        if let cap = model.traits.finalLogitSoftcapping { Operations.softcap(logits, count: count * output.rows, cap: cap) }
    }
}

import EmberGGUF
import EmberKernels
import Foundation

/// Gemma 3n (E2B, E4B) as llama.cpp runs it. The hidden state is a stack of AltUp streams (four):
/// the √d-scaled embedding and three projections of it rescaled to its magnitude. Every layer
/// first predicts each stream as itself plus a mix of all streams, with coefficients from a
/// router over the active stream (`altup_router`, `altup_predict_coef`); the active prediction
/// goes through the block — attention (RMS norms of query and key heads, an unweighted one of
/// value heads, scale 1) beside a LAuReL low-rank branch, then GeGLU whose gate in the first
/// layers keeps only values above mean + k·σ (Gaussian top-k activation sparsity) — and the
/// block's output corrects every prediction by its innovation (`altup_correct_coef`). The per-layer
/// embedding, gated by the corrected active stream, is added to the other streams. At the end the
/// other streams are unembedded, rescaled to the active stream's magnitude and all are averaged.
/// Sliding and global layers have their own RoPE bases; layers from the first KV-sharing layer on
/// read the cache of the last sliding or global layer before it; logits are softcapped.
///
/// llama.cpp reads few of these sizes from the file: it fixes KV sharing from layer 20, sparsity
/// in layers 0–9 with k = Φ⁻¹(0.95), and the per-layer embedding, AltUp and LAuReL sizes of the
/// released models. Ember reads the file's values, which agree with those on the released models,
/// and falls back to llama.cpp's where the file has none.
public enum Gemma3nArchitecture: CustomForwardArchitecture {
    public static let names = ["gemma3n"]

    static let defaultFirstSharedLayer = 20
    static let defaultSparseLayerCount = 10
    /// Φ⁻¹(0.95): the gate keeps values above mean + 1.645 σ.
    static let defaultSparsityMultiplier: Float = 1.6448533535003662
    static let defaultSlidingPeriod = 5

    struct Hyperparameters: Sendable {
        var layers: [GemmaAttentionShape]
        var streamCount: Int
        var activeStream: Int
        var feedForwardLengths: [Int]
        var perLayerWidth: Int
        /// Per layer, k of the Gaussian top-k sparsity of the gate; nil for dense layers.
        var sparsityMultipliers: [Float?]
        var finalLogitSoftcapping: Float?
    }

    static func hyperparameters(configuration c: ModelConfiguration, file: GGUFFile) throws(LanguageModelError) -> Hyperparameters {
        let a = c.architecture
        let layerCount = c.layerCount
        let sliding = file.integers("\(a).attention.sliding_window_pattern") == nil
            ? (0..<layerCount).map { $0 % defaultSlidingPeriod < defaultSlidingPeriod - 1 }
            : try file.slidingLayers(architecture: a, layerCount: layerCount)
        guard let window = c.slidingWindow else {
            throw LanguageModelError(.missingMetadata, "\(a) model file is missing '\(a).attention.sliding_window'")
        }
        typealias Limits = ModelConfiguration.Limits
        let firstShared = min(layerCount, try ModelConfiguration.integer(file, a, "attention.shared_kv_layers", in: 0...layerCount)
            .map { layerCount - $0 } ?? defaultFirstSharedLayer)
        let slidingBase = file.float("\(a).rope.freq_base_swa") ?? Gemma4Architecture.defaultSlidingRopeFrequencyBase
        let layers = try GemmaAttentionShape.layers(isSliding: sliding, firstSharedLayer: firstShared) { _, isSliding in
            GemmaAttentionShape(
                isSliding: isSliding, headCount: c.headCount, keyValueHeadCount: c.keyValueHeadCount, headLength: c.keyLength,
                window: isSliding ? window : nil, rotaryDimensionCount: c.ropeDimensionCount,
                ropeFrequencyBase: isSliding ? slidingBase : c.ropeFrequencyBase, frequencyFactors: nil,
                cacheLayer: 0, storesKeysAndValues: true)
        }
        guard c.valueLength == c.keyLength else {
            throw LanguageModelError(.missingMetadata, "\(a) needs value heads as long as key heads")
        }
        var multipliers: [Float?] = (0..<layerCount).map { $0 < defaultSparseLayerCount ? defaultSparsityMultiplier : nil }
        if let scales = file.floats("\(a).activation_sparsity_scale") {
            guard scales.count == layerCount else {
                throw LanguageModelError(.missingMetadata, "'\(a).activation_sparsity_scale' has \(scales.count) values, the model has \(layerCount) layers")
            }
            multipliers = scales.map { $0.isFinite ? $0 : nil }
        }
        let streams = try ModelConfiguration.integer(file, a, "altup.num_inputs", in: 2...64) ?? 4
        let active = try ModelConfiguration.integer(file, a, "altup.active_idx", in: 0...63) ?? 0
        guard streams >= 2, active < streams else {
            throw LanguageModelError(.missingMetadata, "\(a): active AltUp stream \(active) of \(streams)")
        }
        let cap = file.float("\(a).final_logit_softcapping") ?? Gemma4Architecture.defaultFinalLogitSoftcapping
        let feedForward = try file.perLayerIntegers("\(a).feed_forward_length", layerCount: layerCount) ?? []
        return Hyperparameters(layers: layers, streamCount: streams, activeStream: active, feedForwardLengths: feedForward,
                               perLayerWidth: try ModelConfiguration.integer(file, a, "embedding_length_per_layer_input",
                                                                             in: 1...Limits.embeddingLength) ?? 256,
                               sparsityMultipliers: multipliers, finalLogitSoftcapping: cap == 0 ? nil : cap)
    }

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        let parameters = try hyperparameters(configuration: configuration, file: gguf)
        return GemmaAttentionShape.traits(configuration: configuration, layers: parameters.layers,
                                          finalLogitSoftcapping: parameters.finalLogitSoftcapping)
    }

    static func loadLayers(configuration: ModelConfiguration, traits: ArchitectureTraits, file: GGUFFile,
                           loader: WeightLoader) throws(LanguageModelError) -> any CustomLayerWeights {
        try Gemma3nWeights(configuration: configuration, file: file, loader: loader)
    }

    static func keyValueCacheShape(configuration: ModelConfiguration, file: GGUFFile) throws(LanguageModelError) -> KeyValueCacheShape {
        GemmaAttentionShape.cacheShape(try hyperparameters(configuration: configuration, file: file).layers)
    }

    static func scratch(configuration c: ModelConfiguration, file: GGUFFile, batchSize: Int) -> CustomForwardScratch? {
        guard let parameters = try? hyperparameters(configuration: c, file: file) else { return nil }
        let rank = file.tensor(named: "blk.0.laurel_l.weight")?.rowCount ?? 0
        return CustomForwardScratch(
            bufferFloats: Gemma3nForwardPass.bufferFloats(configuration: c, parameters: parameters, laurelRank: rank, batch: batchSize),
            attention: GemmaAttentionShape.extent(parameters.layers))
    }
}

/// The weights of a Gemma 3n model's layers, AltUp projections and per-layer embeddings.
struct Gemma3nWeights: CustomLayerWeights {
    struct Layer: Sendable {
        let attentionNorm: [Float]
        let attention: GemmaAttentionWeights
        let feedForward: GemmaFeedForwardWeights
        let perLayerGate: PerLayerGate
        /// `altup_router`: stream-count rows; `altup_router_norm`.
        let router: WeightMatrix
        let routerNorm: [Float]
        /// `altup_predict_coef`: streams² rows; `altup_correct_coef`: streams rows.
        let predictCoefficients: WeightMatrix
        let correctCoefficients: WeightMatrix
        /// `altup_correct_scale`: scales the corrected active stream before the per-layer gate.
        let correctScale: [Float]
        /// LAuReL: `laurel_l` (rank rows), `laurel_r` (embedding rows), `laurel_post_norm`.
        let laurelLeft: WeightMatrix
        let laurelRight: WeightMatrix
        let laurelPostNorm: [Float]
        let sparsityMultiplier: Float?

        var matrices: [WeightMatrix] {
            [router, predictCoefficients, laurelLeft, laurelRight] + attention.matrices + feedForward.matrices
                + [correctCoefficients] + perLayerGate.matrices
        }
    }

    let parameters: Gemma3nArchitecture.Hyperparameters
    let layers: [Layer]
    let perLayerEmbeddings: PerLayerEmbeddings
    /// `altup_proj` and `altup_unembd_proj`: one embedding × embedding matrix per extra stream.
    let streamProjections: [WeightMatrix]
    let streamUnembeddings: [WeightMatrix]
    let laurelRank: Int
    let epsilon: Float

    init(configuration c: ModelConfiguration, file: GGUFFile, loader: WeightLoader) throws(LanguageModelError) {
        parameters = try Gemma3nArchitecture.hyperparameters(configuration: c, file: file)
        let embedding = c.embeddingLength
        let streams = parameters.streamCount
        perLayerEmbeddings = try PerLayerEmbeddings(loader: loader, configuration: c, width: parameters.perLayerWidth)
        streamProjections = try loader.matrixSlices("altup_proj.weight", count: streams - 1, rows: embedding, columns: embedding)
        streamUnembeddings = try loader.matrixSlices("altup_unembd_proj.weight", count: streams - 1, rows: embedding, columns: embedding)
        guard let laurel = file.tensor(named: "blk.0.laurel_l.weight"), laurel.dimensions.count == 2 else {
            throw LanguageModelError(.missingTensor, "model file has no tensor 'blk.0.laurel_l.weight'")
        }
        laurelRank = laurel.dimensions[1]
        var layers: [Layer] = []
        for (index, shape) in parameters.layers.enumerated() {
            let prefix = "blk.\(index)."
            layers.append(Layer(
                attentionNorm: try loader.vector(prefix + "attn_norm.weight", count: embedding),
                attention: try GemmaAttentionWeights(loader: loader, prefix: prefix, embedding: embedding, shape: shape,
                                                     valueOptional: false),
                feedForward: try GemmaFeedForwardWeights(loader: loader, prefix: prefix, embedding: embedding, length: parameters.feedForwardLengths[index]),
                perLayerGate: try PerLayerGate(loader: loader, prefix: prefix, embedding: embedding, width: parameters.perLayerWidth),
                router: try loader.matrix(prefix + "altup_router.weight", rows: streams, columns: embedding),
                routerNorm: try loader.vector(prefix + "altup_router_norm.weight", count: embedding),
                predictCoefficients: try loader.matrix(prefix + "altup_predict_coef.weight", rows: streams * streams, columns: streams),
                correctCoefficients: try loader.matrix(prefix + "altup_correct_coef.weight", rows: streams, columns: streams),
                correctScale: try loader.vector(prefix + "altup_correct_scale.weight", count: embedding),
                laurelLeft: try loader.matrix(prefix + "laurel_l.weight", rows: laurelRank, columns: embedding),
                laurelRight: try loader.matrix(prefix + "laurel_r.weight", rows: embedding, columns: laurelRank),
                laurelPostNorm: try loader.vector(prefix + "laurel_post_norm.weight", count: embedding),
                sparsityMultiplier: parameters.sparsityMultipliers[index]))
        }
        self.layers = layers
        epsilon = c.normEpsilon
    }

    var matrices: [WeightMatrix] {
        [perLayerEmbeddings.modelProjection] + streamProjections + layers.flatMap(\.matrices) + streamUnembeddings
    }

    func layerMatrices(_ index: Int) -> [WeightMatrix] { layers[index].matrices }

    var keyValueCacheShape: KeyValueCacheShape { GemmaAttentionShape.cacheShape(parameters.layers) }

    func makeForwardPass(model: TransformerModel, blocks: ForwardBlocks, batchSize: Int) -> any CustomForwardPass {
        Gemma3nForwardPass(weights: self, model: model, blocks: blocks, batchSize: batchSize)
    }
}

/// One session's Gemma 3n forward pass.
final class Gemma3nForwardPass: CustomForwardPass {
    let weights: Gemma3nWeights
    let model: TransformerModel
    let blocks: ForwardBlocks
    private let buffers = FloatBuffers()
    private let streams: UnsafeMutablePointer<Float>        // AltUp streams × batch × embedding
    private let predictions: UnsafeMutablePointer<Float>    // AltUp streams × batch × embedding
    private let normalized: UnsafeMutablePointer<Float>     // batch × embedding
    private let laurel: UnsafeMutablePointer<Float>         // batch × embedding
    private let laurelLow: UnsafeMutablePointer<Float>      // batch × LAuReL rank
    private let blockOutput: UnsafeMutablePointer<Float>    // batch × embedding
    private let projected: UnsafeMutablePointer<Float>      // batch × embedding
    private let queries: UnsafeMutablePointer<Float>        // batch × heads × head length
    private let keys: UnsafeMutablePointer<Float>           // batch × KV heads × head length
    private let values: UnsafeMutablePointer<Float>         // batch × KV heads × head length
    private let attention: UnsafeMutablePointer<Float>      // batch × heads × head length
    private let gate: UnsafeMutablePointer<Float>           // batch × feed-forward
    private let up: UnsafeMutablePointer<Float>             // batch × feed-forward
    private let modalities: UnsafeMutablePointer<Float>     // batch × streams
    private let coefficients: UnsafeMutablePointer<Float>   // batch × streams²
    private let perLayerInputs: UnsafeMutablePointer<Float> // batch × layers × per-layer width
    private let perLayerScratch: UnsafeMutablePointer<Float> // batch × layers × per-layer width

    static func bufferFloats(configuration c: ModelConfiguration, parameters: Gemma3nArchitecture.Hyperparameters, laurelRank: Int,
                             batch: Int) -> Int {
        let streams = parameters.streamCount
        let embedding = c.embeddingLength
        return batch * (2 * streams * embedding + 4 * embedding + laurelRank + 2 * c.headCount * c.keyLength
                        + 2 * c.keyValueHeadCount * c.keyLength + 2 * c.feedForwardLength + streams + streams * streams
                        + 2 * c.layerCount * parameters.perLayerWidth)
    }

    init(weights: Gemma3nWeights, model: TransformerModel, blocks: ForwardBlocks, batchSize: Int) {
        self.weights = weights
        self.model = model
        self.blocks = blocks
        let c = model.configuration
        let batch = batchSize, embedding = c.embeddingLength, streamCount = weights.parameters.streamCount
        streams = buffers.make(streamCount * batch * embedding)
        predictions = buffers.make(streamCount * batch * embedding)
        normalized = buffers.make(batch * embedding)
        laurel = buffers.make(batch * embedding)
        laurelLow = buffers.make(batch * weights.laurelRank)
        blockOutput = buffers.make(batch * embedding)
        projected = buffers.make(batch * embedding)
        queries = buffers.make(batch * c.headCount * c.keyLength)
        keys = buffers.make(batch * c.keyValueHeadCount * c.keyLength)
        values = buffers.make(batch * c.keyValueHeadCount * c.keyLength)
        attention = buffers.make(batch * c.headCount * c.keyLength)
        gate = buffers.make(batch * c.feedForwardLength)
        up = buffers.make(batch * c.feedForwardLength)
        modalities = buffers.make(batch * streamCount)
        coefficients = buffers.make(batch * streamCount * streamCount)
        perLayerInputs = buffers.make(batch * c.layerCount * weights.parameters.perLayerWidth)
        perLayerScratch = buffers.make(batch * c.layerCount * weights.parameters.perLayerWidth)
    }

    /// Stream `index` of the batch: `count` rows of embedding length.
    @inline(__always)
    private func stream(_ base: UnsafeMutablePointer<Float>, _ index: Int, count: Int) -> UnsafeMutablePointer<Float> {
        base + index * count * model.configuration.embeddingLength
    }

    /// Rescales each row of `values` to the magnitude of the same row of `target`: `v · |t| / |v|`.
    private func rescale(_ values: UnsafeMutablePointer<Float>, toMagnitudeOf target: UnsafePointer<Float>, count: Int) {
        let embedding = model.configuration.embeddingLength
        for token in 0..<count {
            let row = values + token * embedding
            let wanted = Operations.magnitude(target + token * embedding, count: embedding)
            let current = Operations.magnitude(row, count: embedding)
            for i in 0..<embedding { row[i] = row[i] * wanted / current }
        }
    }

    /// AltUp's router: `tanh(router · (rmsNorm(x) / d))`, streams values per token into `modalities`.
    private func routeModalities(_ input: UnsafePointer<Float>, layer: Gemma3nWeights.Layer, count: Int) {
        let embedding = model.configuration.embeddingLength
        blocks.normalizeRows(input, weight: layer.routerNorm, output: normalized, rows: count, length: embedding)
        Operations.scale(normalized, by: 1 / Float(embedding), count: count * embedding)
        blocks.project(layer.router, input: normalized, tokens: count, output: modalities)
        for i in 0..<(count * weights.parameters.streamCount) { modalities[i] = tanhf(modalities[i]) }
    }

    /// Gaussian top-k: keeps what each row exceeds its mean + k·σ by (σ with n − 1), zero elsewhere.
    private func sparsify(_ values: UnsafeMutablePointer<Float>, rows: Int, length: Int, multiplier: Float) {
        for row in 0..<rows {
            let vector = values + row * length
            var sum: Double = 0
            for i in 0..<length { sum += Double(vector[i]) }
            let mean = Float(sum) / Float(length)
            var squares: Double = 0
            for i in 0..<length {
                let difference = vector[i] - mean
                squares += Double(difference * difference)
            }
            let deviation = (Float(squares) * (1 / Float(length - 1))).squareRoot()
            let cutoff = mean + deviation * multiplier
            for i in 0..<length { vector[i] = max(0, vector[i] - cutoff) }
        }
    }

    func forward(_ tokens: UnsafeBufferPointer<Int32>, placement: RowPlacement, output: UnsafeMutablePointer<Float>) {
        let blocks = self.blocks
        let count = tokens.count
        let c = model.configuration
        let embedding = c.embeddingLength
        let streamCount = weights.parameters.streamCount
        let active = weights.parameters.activeStream
        let rows = count * embedding

        // Stream 0: the scaled embeddings; the others: projections of it at its magnitude.
        let first = stream(streams, 0, count: count)
        model.lookUpEmbeddings(tokens, into: first)
        Operations.scale(first, by: Float(embedding).squareRoot(), count: rows)
        weights.perLayerEmbeddings.inputs(tokens: tokens, embeddings: first, output: perLayerInputs, projected: perLayerScratch,
                                          blocks: blocks)
        for index in 1..<streamCount {
            let target = stream(streams, index, count: count)
            blocks.project(weights.streamProjections[index - 1], input: first, tokens: count, output: target)
            rescale(target, toMagnitudeOf: first, count: count)
        }

        blocks.prefetch(weights.layerMatrices(0))
        for (layerIndex, layer) in weights.layers.enumerated() {
            if layerIndex + 1 < weights.layers.count { blocks.prefetch(weights.layerMatrices(layerIndex + 1)) }

            // AltUp predict: every stream plus a router-weighted mix of all streams.
            routeModalities(stream(streams, active, count: count), layer: layer, count: count)
            blocks.project(layer.predictCoefficients, input: modalities, tokens: count, output: coefficients)
            for index in 0..<streamCount {
                let prediction = stream(predictions, index, count: count)
                let own = stream(streams, index, count: count)
                for token in 0..<count {
                    let mix = coefficients + (token * streamCount + index) * streamCount
                    let row = prediction + token * embedding
                    for i in 0..<embedding {
                        // A matmul over the streams in llama.cpp (k = streams, under 16: ggml_vec_dot_f32's
                        // fused scalar loop).
                        var sum: Float = 0
                        for source in 0..<streamCount {
                            sum.addProduct(streams[(source * count + token) * embedding + i], mix[source])
                        }
                        row[i] = sum + own[token * embedding + i]
                    }
                }
            }
            let activePrediction = stream(predictions, active, count: count)

            // Attention beside LAuReL.
            blocks.normalizeRows(activePrediction, weight: layer.attentionNorm, output: normalized, rows: count, length: embedding)
            blocks.project(layer.laurelLeft, input: normalized, tokens: count, output: laurelLow)
            blocks.project(layer.laurelRight, input: laurelLow, tokens: count, output: laurel)
            blocks.normalizeRows(laurel, weight: layer.laurelPostNorm, output: laurel, rows: count, length: embedding)
            Operations.add(normalized, into: laurel, count: rows)

            layer.attention.run(input: normalized, tokens: count, placement: placement, blocks: blocks, queries: queries, keys: keys,
                                values: values, attention: attention, output: blockOutput)
            blocks.normalizeRows(blockOutput, weight: layer.attention.postNorm, output: blockOutput, rows: count, length: embedding)
            Operations.add(activePrediction, into: blockOutput, count: rows)
            Operations.add(laurel, into: blockOutput, count: rows)
            Operations.scale(blockOutput, by: 1 / Float(2).squareRoot(), count: rows)

            // Feed-forward, sparse in the first layers.
            let feedForward = layer.feedForward
            let length = feedForward.gate.rows
            blocks.normalizeRows(blockOutput, weight: feedForward.norm, output: normalized, rows: count, length: embedding)
            blocks.project(feedForward.up, input: normalized, tokens: count, output: up)
            blocks.project(feedForward.gate, input: normalized, tokens: count, output: gate)
            if let multiplier = layer.sparsityMultiplier {
                sparsify(gate, rows: count, length: length, multiplier: multiplier)
            }
            blocks.activate(.geGLU, gate: gate, up: up, rows: count, width: length)
            blocks.project(feedForward.down, input: gate, tokens: count, output: projected)
            blocks.normalizeRows(projected, weight: feedForward.postNorm, output: projected, rows: count, length: embedding)
            Operations.add(projected, into: blockOutput, count: rows)

            // AltUp correct: each prediction plus the innovation weighted by 1 + routed coefficient.
            routeModalities(blockOutput, layer: layer, count: count)
            blocks.project(layer.correctCoefficients, input: modalities, tokens: count, output: coefficients)
            for index in 0..<streamCount {
                let corrected = stream(streams, index, count: count)
                let prediction = stream(predictions, index, count: count)
                for token in 0..<count {
                    let weight = coefficients[token * streamCount + index] + 1
                    for i in 0..<embedding {
                        let offset = token * embedding + i
                        corrected[offset] = (blockOutput[offset] - activePrediction[offset]) * weight + prediction[offset]
                    }
                }
            }

            // Per-layer embedding, gated by the corrected active stream, added to the other streams.
            let correctedActive = stream(streams, active, count: count)
            layer.correctScale.withUnsafeBufferPointer { scale in
                for token in 0..<count {
                    for i in 0..<embedding { normalized[token * embedding + i] = correctedActive[token * embedding + i] * scale[i] }
                }
            }
            layer.perLayerGate.apply(input: normalized, inputs: perLayerInputs, layer: layerIndex, layerCount: weights.layers.count,
                                     tokens: count, output: projected, scratch: perLayerScratch, blocks: blocks)
            for index in 1..<streamCount {
                Operations.add(projected, into: stream(streams, index, count: count), count: rows)
            }
            blocks.release(weights.layerMatrices(layerIndex))
        }

        // Unembed the other streams at the active stream's magnitude and average all of them.
        let activeStream = stream(streams, active, count: count)
        let merged = stream(streams, 0, count: count)
        for index in 1..<streamCount {
            let unembedded = stream(predictions, index, count: count)
            blocks.project(weights.streamUnembeddings[index - 1], input: stream(streams, index, count: count), tokens: count,
                               output: unembedded)
            rescale(unembedded, toMagnitudeOf: activeStream, count: count)
        }
        for index in 1..<streamCount {
            Operations.add(stream(predictions, index, count: count), into: merged, count: rows)
        }
        Operations.scale(merged, by: 1 / Float(streamCount), count: rows)
        blocks.normalizeRows(merged, weight: model.outputNorm, output: output, rows: count, length: embedding)
    }
}

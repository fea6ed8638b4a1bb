import EmberGGUF
import EmberKernels

/// Gemma 4 (E2B, E4B and the dense larger models) as llama.cpp runs it: embeddings scaled by √d;
/// sliding and global layers (`attention.sliding_window_pattern`) with their own head lengths
/// (`key_length_swa` / `key_length`), KV head counts (a per-layer `head_count_kv`), rotary widths
/// and RoPE bases (`rope.freq_base_swa` / `rope.freq_base`), global layers dividing their angles
/// by `rope_freqs` ("proportional" RoPE: most pairs are frozen by huge factors); RMS norms of each
/// query and key head and an unweighted one of each value head; attention scale 1; a layer
/// without `attn_v` uses its keys as values; GeGLU with a per-layer feed-forward length; norms
/// after attention and the feed-forward block; per-layer embeddings gated into every layer's
/// output; a learned scalar per layer (`layer_output_scale`); the last `attention.shared_kv_layers`
/// layers reading the KV cache of the last sliding or global layer before them; and final-logit
/// softcapping (30 unless the file says otherwise). Norm weights are used as stored.
///
/// Mixture-of-experts layers (26B-A4B) are not supported.
public enum Gemma4Architecture: CustomForwardArchitecture {
    public static let names = ["gemma4"]

    /// llama.cpp's softcapping when the file has no `final_logit_softcapping`.
    static let defaultFinalLogitSoftcapping: Float = 30
    static let defaultSlidingRopeFrequencyBase: Float = 10_000

    /// Hyperparameters beyond `ModelConfiguration`.
    struct Hyperparameters: Sendable {
        var layers: [GemmaAttentionShape]
        var feedForwardLengths: [Int]
        /// Width of each layer's slice of the per-layer embeddings; 0 when the model has none.
        var perLayerWidth: Int
        var finalLogitSoftcapping: Float?
    }

    static func hyperparameters(configuration c: ModelConfiguration, file: GGUFFile,
                                frequencyFactors: [Float]? = nil) throws(LanguageModelError) -> Hyperparameters {
        let a = c.architecture
        let layerCount = c.layerCount
        let sliding = try file.slidingLayers(architecture: a, layerCount: layerCount)
        guard let window = c.slidingWindow else {
            throw LanguageModelError(.missingMetadata, "\(a) model file is missing '\(a).attention.sliding_window'")
        }
        let heads = try file.perLayerIntegers("\(a).attention.head_count", layerCount: layerCount) ?? []
        let keyValueHeads = try file.perLayerIntegers("\(a).attention.head_count_kv", layerCount: layerCount) ?? heads
        let globalHead = c.keyLength
        typealias Limits = ModelConfiguration.Limits
        let slidingHead = try ModelConfiguration.integer(file, a, "attention.key_length_swa", in: 1...Limits.headLength) ?? globalHead
        guard c.valueLength == globalHead, (file.integer("\(a).attention.value_length_swa") ?? c.valueLength) == slidingHead else {
            throw LanguageModelError(.missingMetadata, "\(a) needs value lengths equal to key lengths")
        }
        let globalRotary = c.ropeDimensionCount
        let slidingRotary = try ModelConfiguration.integer(file, a, "rope.dimension_count_swa", in: 0...Limits.headLength) ?? globalRotary
        let slidingBase = file.float("\(a).rope.freq_base_swa") ?? defaultSlidingRopeFrequencyBase
        let sharedLayers = try ModelConfiguration.integer(file, a, "attention.shared_kv_layers", in: 0...layerCount) ?? 0
        let firstShared = layerCount - sharedLayers
        let feedForward = try file.perLayerIntegers("\(a).feed_forward_length", layerCount: layerCount) ?? []
        let cap = file.float("\(a).final_logit_softcapping") ?? defaultFinalLogitSoftcapping

        let layers = try GemmaAttentionShape.layers(isSliding: sliding, firstSharedLayer: firstShared) { index, isSliding in
            GemmaAttentionShape(
                isSliding: isSliding, headCount: heads[index], keyValueHeadCount: keyValueHeads[index],
                headLength: isSliding ? slidingHead : globalHead, window: isSliding ? window : nil,
                rotaryDimensionCount: isSliding ? slidingRotary : globalRotary,
                ropeFrequencyBase: isSliding ? slidingBase : c.ropeFrequencyBase,
                frequencyFactors: isSliding ? nil : frequencyFactors, cacheLayer: index, storesKeysAndValues: true)
        }
        for (index, layer) in layers.enumerated() {
            guard layer.keyValueHeadCount > 0, layer.headCount % layer.keyValueHeadCount == 0,
                  layer.rotaryDimensionCount <= layer.headLength, layer.rotaryDimensionCount % 2 == 0 else {
                throw LanguageModelError(.missingMetadata,
                    "\(a) layer \(index): \(layer.headCount) heads, \(layer.keyValueHeadCount) KV heads, rotary width \(layer.rotaryDimensionCount) of head length \(layer.headLength) do not fit")
            }
        }
        return Hyperparameters(layers: layers, feedForwardLengths: feedForward,
                               perLayerWidth: try ModelConfiguration.integer(file, a, "embedding_length_per_layer_input",
                                                                             in: 0...Limits.embeddingLength) ?? 0,
                               finalLogitSoftcapping: cap == 0 ? nil : cap)
    }

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        let parameters = try hyperparameters(configuration: configuration, file: gguf)
        return GemmaAttentionShape.traits(configuration: configuration, layers: parameters.layers,
                                          finalLogitSoftcapping: parameters.finalLogitSoftcapping)
    }

    static func loadLayers(configuration: ModelConfiguration, traits: ArchitectureTraits, file: GGUFFile,
                           loader: WeightLoader) throws(LanguageModelError) -> any CustomLayerWeights {
        try Gemma4Weights(configuration: configuration, file: file, loader: loader)
    }

    static func keyValueCacheShape(configuration: ModelConfiguration, file: GGUFFile) throws(LanguageModelError) -> KeyValueCacheShape {
        GemmaAttentionShape.cacheShape(try hyperparameters(configuration: configuration, file: file).layers)
    }

    static func scratch(configuration c: ModelConfiguration, file: GGUFFile, batchSize: Int) -> CustomForwardScratch? {
        guard let parameters = try? hyperparameters(configuration: c, file: file) else { return nil }
        let floats = Gemma4ForwardPass.bufferFloats(embedding: c.embeddingLength, layers: parameters.layers,
                                                    feedForwardLengths: parameters.feedForwardLengths,
                                                    perLayerWidth: parameters.perLayerWidth, batch: batchSize,
                                                    experts: file.tensors.contains { $0.name.hasSuffix(".ffn_gate_inp.weight") })
        return CustomForwardScratch(bufferFloats: floats, attention: GemmaAttentionShape.extent(parameters.layers))
    }
}

/// The weights of a Gemma 4 model's layers and per-layer embeddings.
struct Gemma4Weights: CustomLayerWeights {
    struct Layer: Sendable {
        let attentionNorm: [Float]
        let attention: GemmaAttentionWeights
        let feedForward: GemmaFeedForwardWeights
        let perLayerGate: PerLayerGate?
        /// `layer_output_scale`: multiplies the layer's output.
        let outputScale: Float?
        /// Routed experts beside the dense feed-forward (26B-A4B), or nil.
        let experts: Experts?

        var matrices: [WeightMatrix] {
            attention.matrices + feedForward.matrices + (experts?.weights.matrices ?? []) + (perLayerGate?.matrices ?? [])
        }
    }

    /// A layer's mixture of experts: the router reads an unweighted RMS norm of the stream scaled
    /// by 1/√embedding and `routerScale`; the experts read `preNorm`'s normalization; the dense
    /// branch's output goes through `denseNorm`, the experts' through `expertNorm`, and their sum
    /// through the layer's usual post-feed-forward norm.
    struct Experts: Sendable {
        let weights: ExpertLayerWeights
        let routerScale: [Float]
        let preNorm: [Float]
        let denseNorm: [Float]
        let expertNorm: [Float]
    }

    let parameters: Gemma4Architecture.Hyperparameters
    let layers: [Layer]
    let perLayerEmbeddings: PerLayerEmbeddings?
    let epsilon: Float
    /// The experts' dimensions when any layer has experts.
    let expertTraits: MixtureOfExpertsTraits?

    init(configuration c: ModelConfiguration, file: GGUFFile, loader: WeightLoader) throws(LanguageModelError) {
        let embedding = c.embeddingLength
        let expertTraits = file.tensors.contains(where: { $0.name.hasSuffix(".ffn_gate_inp.weight") })
            ? try MixtureOfExpertsTraits.read(configuration: c, gguf: file, normalizesWeights: true, activation: .geGLU)
            : nil
        self.expertTraits = expertTraits
        // One `rope_freqs` tensor serves every global layer.
        let globalHead = c.keyLength
        let factors = try loader.optionalVector("rope_freqs.weight", count: globalHead / 2)
        parameters = try Gemma4Architecture.hyperparameters(configuration: c, file: file, frequencyFactors: factors)
        let width = parameters.perLayerWidth
        perLayerEmbeddings = width > 0 ? try PerLayerEmbeddings(loader: loader, configuration: c, width: width) : nil
        var layers: [Layer] = []
        for (index, shape) in parameters.layers.enumerated() {
            let prefix = "blk.\(index)."
            let scale = try loader.optionalVector(prefix + "layer_output_scale.weight", count: 1)
            var experts: Experts?
            if let expertTraits, file.tensor(named: prefix + "ffn_gate_inp.weight") != nil {
                experts = Experts(
                    weights: try loader.expertLayer(prefix: prefix, embedding: embedding, traits: expertTraits),
                    routerScale: try loader.vector(prefix + "ffn_gate_inp.scale", count: embedding),
                    preNorm: try loader.vector(prefix + "pre_ffw_norm_2.weight", count: embedding),
                    denseNorm: try loader.vector(prefix + "post_ffw_norm_1.weight", count: embedding),
                    expertNorm: try loader.vector(prefix + "post_ffw_norm_2.weight", count: embedding))
            }
            layers.append(Layer(
                attentionNorm: try loader.vector(prefix + "attn_norm.weight", count: embedding),
                attention: try GemmaAttentionWeights(loader: loader, prefix: prefix, embedding: embedding, shape: shape,
                                                     valueOptional: true),
                feedForward: try GemmaFeedForwardWeights(loader: loader, prefix: prefix, embedding: embedding,
                                                         length: parameters.feedForwardLengths[index]),
                perLayerGate: width > 0 ? try PerLayerGate(loader: loader, prefix: prefix, embedding: embedding, width: width) : nil,
                outputScale: scale?[0],
                experts: experts))
        }
        self.layers = layers
        epsilon = c.normEpsilon
    }

    var matrices: [WeightMatrix] {
        (perLayerEmbeddings.map { [$0.modelProjection] } ?? []) + layers.flatMap(\.matrices)
    }

    func layerMatrices(_ index: Int) -> [WeightMatrix] { layers[index].matrices }

    var keyValueCacheShape: KeyValueCacheShape { GemmaAttentionShape.cacheShape(parameters.layers) }

    func makeForwardPass(model: TransformerModel, blocks: ForwardBlocks, batchSize: Int) -> any CustomForwardPass {
        Gemma4ForwardPass(weights: self, model: model, blocks: blocks, batchSize: batchSize)
    }
}

/// One session's Gemma 4 forward pass.
final class Gemma4ForwardPass: CustomForwardPass {
    let weights: Gemma4Weights
    let model: TransformerModel
    let blocks: ForwardBlocks
    private let buffers = FloatBuffers()
    private let hidden: UnsafeMutablePointer<Float>         // batch × embedding
    private let normalized: UnsafeMutablePointer<Float>     // batch × embedding
    private let projected: UnsafeMutablePointer<Float>      // batch × embedding
    private let queries: UnsafeMutablePointer<Float>        // batch × widest query
    private let keys: UnsafeMutablePointer<Float>           // batch × widest key
    private let values: UnsafeMutablePointer<Float>         // batch × widest key
    private let attention: UnsafeMutablePointer<Float>      // batch × widest query
    private let gate: UnsafeMutablePointer<Float>           // batch × longest feed-forward
    private let up: UnsafeMutablePointer<Float>             // batch × longest feed-forward
    private let perLayerInputs: UnsafeMutablePointer<Float> // batch × layers × per-layer width
    private let perLayerScratch: UnsafeMutablePointer<Float> // batch × layers × per-layer width
    private let expertBlock: MixtureOfExpertsBlock?
    private let routerInput: UnsafeMutablePointer<Float>    // batch × embedding (experts only)
    private let expertInput: UnsafeMutablePointer<Float>    // batch × embedding (experts only)
    private let expertOutput: UnsafeMutablePointer<Float>   // batch × embedding (experts only)

    /// Floats of the buffers above.
    static func bufferFloats(embedding: Int, layers: [GemmaAttentionShape], feedForwardLengths: [Int], perLayerWidth: Int,
                             batch: Int, experts: Bool) -> Int {
        let query = layers.map(\.queryWidth).max() ?? 0
        let key = layers.map(\.keyValueWidth).max() ?? 0
        let feedForward = feedForwardLengths.max() ?? 0
        return batch * ((experts ? 6 : 3) * embedding + 2 * query + 2 * key + 2 * feedForward + 2 * layers.count * perLayerWidth)
    }

    init(weights: Gemma4Weights, model: TransformerModel, blocks: ForwardBlocks, batchSize: Int) {
        self.weights = weights
        self.model = model
        self.blocks = blocks
        let layers = weights.parameters.layers
        let embedding = model.configuration.embeddingLength
        let query = layers.map(\.queryWidth).max() ?? 0
        let key = layers.map(\.keyValueWidth).max() ?? 0
        let feedForward = weights.parameters.feedForwardLengths.max() ?? 0
        let perLayer = layers.count * weights.parameters.perLayerWidth
        hidden = buffers.make(batchSize * embedding)
        normalized = buffers.make(batchSize * embedding)
        projected = buffers.make(batchSize * embedding)
        queries = buffers.make(batchSize * query)
        keys = buffers.make(batchSize * key)
        values = buffers.make(batchSize * key)
        attention = buffers.make(batchSize * query)
        gate = buffers.make(batchSize * feedForward)
        up = buffers.make(batchSize * feedForward)
        perLayerInputs = buffers.make(batchSize * perLayer)
        perLayerScratch = buffers.make(batchSize * perLayer)
        expertBlock = weights.expertTraits.map { MixtureOfExpertsBlock(traits: $0, embedding: embedding, batchSize: batchSize) }
        let expertRows = expertBlock == nil ? 0 : batchSize * embedding
        routerInput = buffers.make(expertRows)
        expertInput = buffers.make(expertRows)
        expertOutput = buffers.make(expertRows)
    }

    func forward(_ tokens: UnsafeBufferPointer<Int32>, placement: RowPlacement, output: UnsafeMutablePointer<Float>) {
        let blocks = self.blocks
        let count = tokens.count
        let embedding = model.configuration.embeddingLength

        model.lookUpEmbeddings(tokens, into: hidden)
        Operations.scale(hidden, by: Float(embedding).squareRoot(), count: count * embedding)
        weights.perLayerEmbeddings?.inputs(tokens: tokens, embeddings: hidden, output: perLayerInputs, projected: perLayerScratch,
                                           blocks: blocks)
        blocks.prefetch(weights.layerMatrices(0))
        for (index, layer) in weights.layers.enumerated() {
            if index + 1 < weights.layers.count { blocks.prefetch(weights.layerMatrices(index + 1)) }
            // Attention.
            blocks.normalizeRows(hidden, weight: layer.attentionNorm, output: normalized, rows: count, length: embedding)
            layer.attention.run(input: normalized, tokens: count, placement: placement, blocks: blocks, queries: queries, keys: keys,
                                values: values, attention: attention, output: projected)
            blocks.addToResidual(projected, normalizedBy: layer.attention.postNorm, into: hidden, rows: count, length: embedding)

            // Feed-forward, with routed experts beside it in a mixture-of-experts layer.
            let feedForward = layer.feedForward
            blocks.normalizeRows(hidden, weight: feedForward.norm, output: normalized, rows: count, length: embedding)
            blocks.feedForward(gate: feedForward.gate, up: feedForward.up, down: feedForward.down, activation: .geGLU,
                               input: normalized, tokens: count, gateRows: gate, upRows: up, output: projected)
            if let experts = layer.experts, let expertBlock {
                mixExperts(experts, block: expertBlock, tokens: count)
            }
            blocks.addToResidual(projected, normalizedBy: feedForward.postNorm, into: hidden, rows: count, length: embedding)

            // Per-layer embedding.
            if let perLayerGate = layer.perLayerGate {
                perLayerGate.apply(input: hidden, inputs: perLayerInputs, layer: index, layerCount: weights.layers.count, tokens: count,
                                   output: projected, scratch: perLayerScratch, blocks: blocks)
                blocks.addToResidual(projected, normalizedBy: nil, into: hidden, rows: count, length: embedding)
            }
            if let scale = layer.outputScale {
                Operations.scale(hidden, by: scale, count: count * embedding)
            }
            blocks.release(weights.layerMatrices(index))
        }
        blocks.normalizeRows(hidden, weight: model.outputNorm, output: output, rows: count, length: embedding)
    }

    /// A mixture-of-experts layer's feed-forward: `projected` holds the dense branch's output for
    /// the stream in `hidden`; leaves the dense and expert branches, each normed, added there.
    private func mixExperts(_ experts: Gemma4Weights.Experts, block: MixtureOfExpertsBlock, tokens count: Int) {
        let embedding = model.configuration.embeddingLength, blocks = self.blocks
        blocks.normalizeRows(projected, weight: experts.denseNorm, output: projected, rows: count, length: embedding)
        blocks.normalizeRows(hidden, weight: experts.preNorm, output: expertInput, rows: count, length: embedding)
        // The router's input: RMS norm without weight, × 1/√embedding, × the learned scale (two
        // multiplications, in llama.cpp's order).
        blocks.normalizeRows(hidden, weight: nil, output: routerInput, rows: count, length: embedding)
        let inverseRoot = 1 / Float(embedding).squareRoot()
        experts.routerScale.withUnsafeBufferPointer { scale in
            for row in 0..<count {
                let vector = routerInput + row * embedding
                for i in 0..<embedding { vector[i] = (vector[i] * inverseRoot) * scale[i] }
            }
        }
        block.run(experts.weights, input: expertInput, routerInput: routerInput, tokens: count, output: expertOutput,
                  streamsExperts: false) { matrix, input, tokens, output, expert in
            blocks.project(matrix, input: input, tokens: tokens, output: output, rowByRow: expert)
        }
        blocks.normalizeRows(expertOutput, weight: experts.expertNorm, output: expertOutput, rows: count, length: embedding)
        Operations.add(expertOutput, into: projected, count: count * embedding)
    }
}

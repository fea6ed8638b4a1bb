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

    static func scratchByteCount(configuration c: ModelConfiguration, file: GGUFFile, contextLength: Int, batchSize: Int,
                                 threadCount: Int) -> Int {
        guard let parameters = try? hyperparameters(configuration: c, file: file) else { return 0 }
        let batch = max(1, min(batchSize, contextLength))
        let floats = Gemma4ForwardPass.bufferFloats(embedding: c.embeddingLength, layers: parameters.layers,
                                                    feedForwardLengths: parameters.feedForwardLengths,
                                                    perLayerWidth: parameters.perLayerWidth, batch: batch,
                                                    experts: file.tensors.contains { $0.name.hasSuffix(".ffn_gate_inp.weight") })
        let matrices = file.tensors.filter { $0.dimensions.count >= 2 && $0.name != "token_embd.weight" && $0.name != "output.weight" }
            .map { ($0.type, $0.rowLength) }
        let longestHead = parameters.layers.map(\.headLength).max() ?? 0
        return floats * 4 + GemmaWorkspace.fixedByteCount(matrices: matrices, longestHead: longestHead, contextLength: contextLength,
                                                          batchSize: batch, threadCount: threadCount)
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

    func makeForwardPass(model: TransformerModel, contextLength: Int, batchSize: Int, pool: ThreadPool) -> any CustomForwardPass {
        Gemma4ForwardPass(weights: self, model: model, contextLength: contextLength, batchSize: batchSize, pool: pool)
    }
}

/// One session's Gemma 4 forward pass.
final class Gemma4ForwardPass: CustomForwardPass {
    let weights: Gemma4Weights
    let model: TransformerModel
    let workspace: GemmaWorkspace
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

    init(weights: Gemma4Weights, model: TransformerModel, contextLength: Int, batchSize: Int, pool: ThreadPool) {
        self.weights = weights
        self.model = model
        let layers = weights.parameters.layers
        workspace = GemmaWorkspace(model: model, matrices: weights.matrices, longestHead: layers.map(\.headLength).max() ?? 0,
                                   contextLength: contextLength, batchSize: batchSize, pool: pool)
        let embedding = model.configuration.embeddingLength
        let query = layers.map(\.queryWidth).max() ?? 0
        let key = layers.map(\.keyValueWidth).max() ?? 0
        let feedForward = weights.parameters.feedForwardLengths.max() ?? 0
        let perLayer = layers.count * weights.parameters.perLayerWidth
        hidden = workspace.buffer(batchSize * embedding)
        normalized = workspace.buffer(batchSize * embedding)
        projected = workspace.buffer(batchSize * embedding)
        queries = workspace.buffer(batchSize * query)
        keys = workspace.buffer(batchSize * key)
        values = workspace.buffer(batchSize * key)
        attention = workspace.buffer(batchSize * query)
        gate = workspace.buffer(batchSize * feedForward)
        up = workspace.buffer(batchSize * feedForward)
        perLayerInputs = workspace.buffer(batchSize * perLayer)
        perLayerScratch = workspace.buffer(batchSize * perLayer)
        expertBlock = weights.expertTraits.map { MixtureOfExpertsBlock(traits: $0, embedding: embedding, batchSize: batchSize) }
        let expertRows = expertBlock == nil ? 0 : batchSize * embedding
        routerInput = workspace.buffer(expertRows)
        expertInput = workspace.buffer(expertRows)
        expertOutput = workspace.buffer(expertRows)
    }

    func forward(_ tokens: UnsafeBufferPointer<Int32>, cache: KeyValueCache, output: UnsafeMutablePointer<Float>) {
        let workspace = self.workspace
        let count = tokens.count
        let embedding = model.configuration.embeddingLength
        let epsilon = weights.epsilon
        let firstPosition = cache.count

        model.lookUpEmbeddings(tokens, into: hidden)
        Operations.scale(hidden, by: Float(embedding).squareRoot(), count: count * embedding)
        if let perLayer = weights.perLayerEmbeddings {
            perLayer.inputs(tokens: tokens, embeddings: hidden, output: perLayerInputs, projected: perLayerScratch,
                            workspace: workspace, epsilon: epsilon)
        }

        workspace.prefetch(weights.layerMatrices(0))
        for (index, layer) in weights.layers.enumerated() {
            if index + 1 < weights.layers.count { workspace.prefetch(weights.layerMatrices(index + 1)) }
            let shape = layer.attention.shape
            let attentionWeights = layer.attention

            // Attention.
            workspace.rmsNormRows(hidden, weight: layer.attentionNorm, output: normalized, rows: count, length: embedding, epsilon: epsilon)
            workspace.multiply(attentionWeights.query, input: normalized, tokens: count, output: queries)
            workspace.rmsNormRows(queries, weight: attentionWeights.queryNorm, output: queries, rows: count * shape.headCount,
                                  length: shape.headLength, epsilon: epsilon)
            workspace.rotate(queries, tokens: count, headCount: shape.headCount, shape: shape, firstPosition: firstPosition)
            if let key = attentionWeights.key {
                workspace.multiply(key, input: normalized, tokens: count, output: keys)
                if let value = attentionWeights.value {
                    workspace.multiply(value, input: normalized, tokens: count, output: values)
                } else {
                    values.update(from: keys, count: count * shape.keyValueWidth)
                }
                workspace.rmsNormRows(keys, weight: attentionWeights.keyNorm, output: keys, rows: count * shape.keyValueHeadCount,
                                      length: shape.headLength, epsilon: epsilon)
                workspace.rmsNormRows(values, weight: nil, output: values, rows: count * shape.keyValueHeadCount,
                                      length: shape.headLength, epsilon: epsilon)
                workspace.rotate(keys, tokens: count, headCount: shape.keyValueHeadCount, shape: shape, firstPosition: firstPosition)
                workspace.store(keys: keys, values: values, shape: shape, cache: cache, tokens: count, firstPosition: firstPosition)
            }
            workspace.attend(queries: queries, shape: shape, scale: 1, cache: cache, tokens: count, firstPosition: firstPosition,
                             output: attention)
            workspace.multiply(attentionWeights.output, input: attention, tokens: count, output: projected)
            workspace.rmsNormRows(projected, weight: attentionWeights.postNorm, output: projected, rows: count, length: embedding,
                                  epsilon: epsilon)
            Operations.add(projected, into: hidden, count: count * embedding)

            // Feed-forward.
            let feedForward = layer.feedForward
            let length = feedForward.gate.rows
            workspace.rmsNormRows(hidden, weight: feedForward.norm, output: normalized, rows: count, length: embedding, epsilon: epsilon)
            workspace.multiply(feedForward.gate, input: normalized, tokens: count, output: gate)
            workspace.multiply(feedForward.up, input: normalized, tokens: count, output: up)
            Operations.geGLU(gate: gate, up: up, count: count * length)
            workspace.multiply(feedForward.down, input: gate, tokens: count, output: projected)
            if let experts = layer.experts, let expertBlock {
                mixExperts(experts, block: expertBlock, tokens: count)
            }
            workspace.rmsNormRows(projected, weight: feedForward.postNorm, output: projected, rows: count, length: embedding,
                                  epsilon: epsilon)
            Operations.add(projected, into: hidden, count: count * embedding)

            // Per-layer embedding.
            if let perLayerGate = layer.perLayerGate {
                perLayerGate.apply(input: hidden, inputs: perLayerInputs, layer: index, layerCount: weights.layers.count, tokens: count,
                                   output: projected, scratch: perLayerScratch, workspace: workspace, epsilon: epsilon)
                Operations.add(projected, into: hidden, count: count * embedding)
            }
            if let scale = layer.outputScale {
                Operations.scale(hidden, by: scale, count: count * embedding)
            }
            workspace.release(weights.layerMatrices(index))
        }
        workspace.rmsNormRows(hidden, weight: model.outputNorm, output: output, rows: count, length: embedding, epsilon: epsilon)
    }

    /// A mixture-of-experts layer's feed-forward: `projected` holds the dense branch's output for
    /// the stream in `hidden`; leaves the dense and expert branches, each normed, added there.
    private func mixExperts(_ experts: Gemma4Weights.Experts, block: MixtureOfExpertsBlock, tokens count: Int) {
        let embedding = model.configuration.embeddingLength, epsilon = weights.epsilon
        workspace.rmsNormRows(projected, weight: experts.denseNorm, output: projected, rows: count, length: embedding, epsilon: epsilon)
        workspace.rmsNormRows(hidden, weight: experts.preNorm, output: expertInput, rows: count, length: embedding, epsilon: epsilon)
        // The router's input: RMS norm without weight, × 1/√embedding, × the learned scale (two
        // multiplications, in llama.cpp's order).
        workspace.rmsNormRows(hidden, weight: nil, output: routerInput, rows: count, length: embedding, epsilon: epsilon)
        let inverseRoot = 1 / Float(embedding).squareRoot()
        experts.routerScale.withUnsafeBufferPointer { scale in
            for row in 0..<count {
                let vector = routerInput + row * embedding
                for i in 0..<embedding { vector[i] = (vector[i] * inverseRoot) * scale[i] }
            }
        }
        let workspace = self.workspace
        block.run(experts.weights, input: expertInput, routerInput: routerInput, tokens: count, output: expertOutput,
                  streamingFile: nil) { matrix, input, tokens, output, expert in
            workspace.multiply(matrix, input: input, tokens: tokens, output: output, rowByRow: expert)
        }
        workspace.rmsNormRows(expertOutput, weight: experts.expertNorm, output: expertOutput, rows: count, length: embedding,
                              epsilon: epsilon)
        Operations.add(expertOutput, into: projected, count: count * embedding)
    }
}

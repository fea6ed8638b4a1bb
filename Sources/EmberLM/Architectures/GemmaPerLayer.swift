import EmberCore
import EmberGGUF
import EmberKernels
import Foundation

// Parts shared by the Gemma families whose layers depart too far from the plain block to share
// its forward pass (Gemma 3n, Gemma 4): per-layer embeddings, per-layer attention shapes with a
// KV cache shared across layers, and the attention block both write with `ForwardBlocks`.

// MARK: Layer attention shapes

/// Attention of one layer of a Gemma family with per-layer shapes: sliding or global, its own head
/// length, head counts, rotary width, RoPE base and frequency factors, and the cache layer whose
/// keys and values it reads (its own, or an earlier layer's when it shares the KV cache).
struct GemmaAttentionShape: Sendable, Equatable {
    /// The traits both per-layer Gemma families share: GeGLU, NeoX RoPE, √d embedding scale,
    /// query/key norms, post-norms, attention scale 1 (the query norm does the scaling), and each
    /// layer's window and RoPE base.
    static func traits(configuration: ModelConfiguration, layers: [GemmaAttentionShape],
                       finalLogitSoftcapping: Float?) -> ArchitectureTraits {
        var traits = ArchitectureTraits(
            activation: .geGLU,
            rotaryLayout: .splitHalves,
            embeddingScale: Float(configuration.embeddingLength).squareRoot(),
            hasQueryKeyNorms: true,
            hasPostNorms: true,
            attentionScale: 1,
            layers: layers.map { ArchitectureTraits.LayerAttention(slidingWindow: $0.window, ropeFrequencyBase: $0.ropeFrequencyBase) },
            defaultChatTemplate: .gemma)
        traits.finalLogitSoftcapping = finalLogitSoftcapping
        return traits
    }

    var isSliding: Bool
    var headCount: Int
    var keyValueHeadCount: Int
    var headLength: Int
    /// Only the last `window` positions are visible; nil for global layers.
    var window: Int?
    var rotaryDimensionCount: Int
    var ropeFrequencyBase: Float
    /// llama.cpp's `rope_freqs`: each rotary pair's angle is divided by its factor.
    var frequencyFactors: [Float]?
    /// The KV cache layer this layer reads.
    var cacheLayer: Int
    /// Whether this layer computes keys and values and writes them to `cacheLayer`.
    var storesKeysAndValues: Bool

    var queryWidth: Int { headCount * headLength }
    var keyValueWidth: Int { keyValueHeadCount * headLength }

    /// The heads as the attention block reads them: scale 1 (the query norm does the scaling).
    var heads: AttentionHeads {
        AttentionHeads(headCount: headCount, keyValueHeadCount: keyValueHeadCount, keyLength: headLength, valueLength: headLength,
                       window: window, scale: 1, cacheLayer: cacheLayer)
    }

    /// NeoX RoPE of the layer's rotary width: pair i turns by position · base^(-2i/n) / factor[i],
    /// as ggml computes the angles.
    var rotary: RotaryEmbedding {
        RotaryEmbedding(dimensionCount: rotaryDimensionCount, base: ropeFrequencyBase, layout: .splitHalves,
                        frequencyFactors: frequencyFactors)
    }

    /// The longest head and widest rotary table of `layers`.
    static func extent(_ layers: [GemmaAttentionShape]) -> AttentionExtent {
        let longest = layers.map(\.headLength).max() ?? 0
        let widestGroup = layers.map { $0.headCount / max(1, $0.keyValueHeadCount) }.max() ?? 1
        return AttentionExtent(keyLength: longest, valueLength: longest,
                               rotaryDimensionCount: layers.map(\.rotaryDimensionCount).max() ?? 0,
                               queryBlock: AttentionExtent.queryBlock(group: widestGroup))
    }
}

extension GemmaAttentionShape {
    /// The layers of a Gemma 3n / Gemma 4 file: sliding or global as `isSliding` says, the layers
    /// from `firstSharedLayer` on reusing the cache of the last sliding (for sliding layers) or the
    /// last global layer (for global ones) before it, as llama.cpp arranges the KV cache.
    static func layers(isSliding: [Bool], firstSharedLayer: Int, shape: (Int, Bool) -> GemmaAttentionShape)
        throws(LanguageModelError) -> [GemmaAttentionShape] {
        let count = isSliding.count
        var layers: [GemmaAttentionShape] = []
        for index in 0..<count {
            var layer = shape(index, isSliding[index])
            if index < firstSharedLayer {
                layer.cacheLayer = index
                layer.storesKeysAndValues = true
            } else {
                let source = firstSharedLayer - (isSliding[index] ? 2 : 1)
                guard source >= 0, isSliding[source] == isSliding[index] else {
                    throw LanguageModelError(.missingMetadata,
                        "layer \(index) shares the KV cache of layer \(source), which is not a \(isSliding[index] ? "sliding" : "global") layer")
                }
                let sourceShape = shape(source, isSliding[source])
                guard sourceShape.keyValueHeadCount == layer.keyValueHeadCount, sourceShape.headLength == layer.headLength else {
                    throw LanguageModelError(.missingMetadata, "layer \(index) shares the KV cache of layer \(source), whose heads differ")
                }
                layer.cacheLayer = source
                layer.storesKeysAndValues = false
            }
            layers.append(layer)
        }
        return layers
    }

    /// The KV cache these layers need: one cache layer per storing layer, rows as wide as the widest.
    static func cacheShape(_ layers: [GemmaAttentionShape]) -> KeyValueCacheShape {
        let storing = layers.filter(\.storesKeysAndValues)
        let width = storing.map(\.keyValueWidth).max() ?? 0
        return KeyValueCacheShape(layerCount: storing.count, keyWidth: width, valueWidth: width)
    }
}

// MARK: Metadata

extension GGUFFile {
    /// `key` as one value per layer: an array of `layerCount` integers, or one integer for all.
    func perLayerIntegers(_ key: String, layerCount: Int) throws(LanguageModelError) -> [Int]? {
        if let values = integers(key) {
            guard values.count == layerCount else {
                throw LanguageModelError(.missingMetadata, "'\(key)' has \(values.count) values, the model has \(layerCount) layers")
            }
            return values
        }
        return integer(key).map { Array(repeating: $0, count: layerCount) }
    }

    /// `<architecture>.attention.sliding_window_pattern` as one flag per layer.
    func slidingLayers(architecture: String, layerCount: Int) throws(LanguageModelError) -> [Bool] {
        let key = "\(architecture).attention.sliding_window_pattern"
        guard let values = integers(key) else {
            throw LanguageModelError(.missingMetadata, "\(architecture) model file is missing '\(key)' (one flag per layer)")
        }
        guard values.count == layerCount else {
            throw LanguageModelError(.missingMetadata, "'\(key)' has \(values.count) values, the model has \(layerCount) layers")
        }
        return values.map { $0 != 0 }
    }
}

// MARK: Per-layer embeddings

/// Gemma's per-layer embeddings: a second token table with a slice of `width` values for every
/// layer, combined with a projection of the scaled token embedding, and gated into each layer's
/// output. The table is looked up by row (never multiplied), so it can stay in the file mapping.
struct PerLayerEmbeddings: Sendable {
    /// `per_layer_token_embd`: vocabulary rows of layers × width.
    let tokenTable: WeightMatrix
    /// `per_layer_model_proj`: layers × width rows of embedding length.
    let modelProjection: WeightMatrix
    /// `per_layer_proj_norm`.
    let projectionNorm: [Float]
    let width: Int
    let layerCount: Int

    init(loader: WeightLoader, configuration: ModelConfiguration, width: Int) throws(LanguageModelError) {
        let columns = width * configuration.layerCount
        var rowLoader = loader
        rowLoader.interleave = false
        tokenTable = try rowLoader.matrix("per_layer_token_embd.weight", rows: configuration.vocabularySize, columns: columns)
        modelProjection = try loader.matrix("per_layer_model_proj.weight", rows: columns, columns: configuration.embeddingLength)
        projectionNorm = try loader.vector("per_layer_proj_norm.weight", count: width)
        self.width = width
        layerCount = configuration.layerCount
    }

    /// The per-layer inputs of `tokens`, whose √d-scaled embeddings are in `embeddings`:
    /// `(rmsNorm(projection · embedding / √d) + √width · table row) / √2`, written to `output` as
    /// tokens × layers × width. `projected` is scratch of the same size.
    func inputs(tokens: UnsafeBufferPointer<Int32>, embeddings: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                projected: UnsafeMutablePointer<Float>, blocks: ForwardBlocks) {
        let count = tokens.count
        let rowLength = width * layerCount
        let embedding = modelProjection.columns
        let epsilon = blocks.epsilon
        blocks.project(modelProjection, input: embeddings, tokens: count, output: projected)
        Operations.scale(projected, by: 1 / Float(embedding).squareRoot(), count: count * rowLength)
        let tableScale = Float(width).squareRoot()
        let inputScale = 1 / Float(2).squareRoot()
        projectionNorm.withUnsafeBufferPointer { norm in
            for (index, token) in tokens.enumerated() {
                let row = output + index * rowLength
                Kernels.dequantize(tokenTable.type, source: tokenTable.data + Int(token) * tokenTable.rowBytes, into: row, count: rowLength)
                for layer in 0..<layerCount {
                    let slice = projected + index * rowLength + layer * width
                    Operations.rmsNorm(slice, weight: norm.baseAddress, output: slice, count: width, epsilon: epsilon)
                }
                let source = projected + index * rowLength
                for i in 0..<rowLength {
                    row[i] = (source[i] + row[i] * tableScale) * inputScale
                }
            }
        }
    }
}

/// The gate of one layer's per-layer input: `rmsNorm(projection · (gelu(gate · x) ⊙ input))`.
struct PerLayerGate: Sendable {
    /// `blk.N.inp_gate`: width rows of embedding length.
    let gate: WeightMatrix
    /// `blk.N.proj`: embedding rows of width.
    let projection: WeightMatrix
    /// `blk.N.post_norm`.
    let postNorm: [Float]

    init(loader: WeightLoader, prefix: String, embedding: Int, width: Int) throws(LanguageModelError) {
        gate = try loader.matrix(prefix + "inp_gate.weight", rows: width, columns: embedding)
        projection = try loader.matrix(prefix + "proj.weight", rows: embedding, columns: width)
        postNorm = try loader.vector(prefix + "post_norm.weight", count: embedding)
    }

    var matrices: [WeightMatrix] { [gate, projection] }

    /// Writes the gated per-layer input of `tokens` rows of `input` to `output`; `inputs` holds
    /// tokens × layers × width per-layer inputs, of which layer `layer` is used.
    func apply(input: UnsafePointer<Float>, inputs: UnsafePointer<Float>, layer: Int, layerCount: Int, tokens: Int,
               output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, blocks: ForwardBlocks) {
        let width = gate.rows
        let embedding = projection.rows
        blocks.project(gate, input: input, tokens: tokens, output: scratch)
        Operations.gelu(scratch, count: tokens * width)
        for token in 0..<tokens {
            let row = scratch + token * width
            let slice = inputs + (token * layerCount + layer) * width
            for i in 0..<width { row[i] *= slice[i] }
        }
        blocks.project(projection, input: scratch, tokens: tokens, output: output)
        blocks.normalizeRows(output, weight: postNorm, output: output, rows: tokens, length: embedding)
    }
}

// MARK: Attention weights

/// Attention weights of one Gemma 3n / Gemma 4 layer. Layers that read another layer's KV cache
/// have no key and value projections; a layer may have no value projection, using its keys.
struct GemmaAttentionWeights: Sendable {
    let shape: GemmaAttentionShape
    let query: WeightMatrix
    let queryNorm: [Float]
    let key: WeightMatrix?
    let value: WeightMatrix?
    let keyNorm: [Float]?
    let output: WeightMatrix
    let postNorm: [Float]

    init(loader: WeightLoader, prefix: String, embedding: Int, shape: GemmaAttentionShape,
         valueOptional: Bool) throws(LanguageModelError) {
        self.shape = shape
        let headLength = shape.headLength
        query = try loader.matrix(prefix + "attn_q.weight", rows: shape.queryWidth, columns: embedding)
        queryNorm = try loader.vector(prefix + "attn_q_norm.weight", count: headLength)
        if shape.storesKeysAndValues {
            key = try loader.matrix(prefix + "attn_k.weight", rows: shape.keyValueWidth, columns: embedding)
            keyNorm = try loader.vector(prefix + "attn_k_norm.weight", count: headLength)
            if valueOptional && loader.file.tensor(named: prefix + "attn_v.weight") == nil {
                value = nil
            } else {
                value = try loader.matrix(prefix + "attn_v.weight", rows: shape.keyValueWidth, columns: embedding)
            }
        } else {
            key = nil
            value = nil
            keyNorm = nil
        }
        output = try loader.matrix(prefix + "attn_output.weight", rows: embedding, columns: shape.queryWidth)
        postNorm = try loader.vector(prefix + "post_attention_norm.weight", count: embedding)
    }

    var matrices: [WeightMatrix] { [query] + [key, value].compactMap { $0 } + [output] }

    /// The layer's attention over `tokens` rows of the normed stream `input`, placed by `placement`:
    /// query heads normed and rotated; where the layer stores keys and values, key heads normed and
    /// rotated, value heads normed without weight (the keys serve as values when the layer has no
    /// value projection), both stored; attention over the cache layer; the output projection (not
    /// yet post-normed) into `output`. `queries`, `keys`, `values` and `attention` are scratch rows.
    func run(input: UnsafePointer<Float>, tokens count: Int, placement: RowPlacement, blocks: ForwardBlocks,
             queries: UnsafeMutablePointer<Float>, keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>,
             attention: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>) {
        let heads = shape.heads, length = shape.headLength
        blocks.project(query, input: input, tokens: count, output: queries)
        blocks.normalizeRows(queries, weight: queryNorm, output: queries, rows: count * heads.headCount, length: length)
        if let key {
            blocks.project(key, input: input, tokens: count, output: keys)
            if let value {
                blocks.project(value, input: input, tokens: count, output: values)
            } else {
                values.update(from: keys, count: count * shape.keyValueWidth)
            }
            blocks.normalizeRows(keys, weight: keyNorm, output: keys, rows: count * heads.keyValueHeadCount, length: length)
            blocks.normalizeRows(values, weight: nil, output: values, rows: count * heads.keyValueHeadCount, length: length)
        }
        blocks.rotate(queries: queries, headCount: heads.headCount, keys: key == nil ? nil : keys, keyHeadCount: heads.keyValueHeadCount,
                      headLength: length, rotary: shape.rotary, tokens: count, placement: placement)
        if key != nil {
            blocks.storeKeysAndValues(keys: keys, values: values, heads: heads, tokens: count, placement: placement)
        }
        blocks.attend(queries: queries, heads: heads, tokens: count, placement: placement, output: attention)
        blocks.project(self.output, input: attention, tokens: count, output: output)
    }
}

/// Feed-forward weights of one layer: GeGLU with a norm before and after.
struct GemmaFeedForwardWeights: Sendable {
    let norm: [Float]
    let gate: WeightMatrix
    let up: WeightMatrix
    let down: WeightMatrix
    let postNorm: [Float]

    init(loader: WeightLoader, prefix: String, embedding: Int, length: Int) throws(LanguageModelError) {
        norm = try loader.vector(prefix + "ffn_norm.weight", count: embedding)
        gate = try loader.matrix(prefix + "ffn_gate.weight", rows: length, columns: embedding)
        up = try loader.matrix(prefix + "ffn_up.weight", rows: length, columns: embedding)
        down = try loader.matrix(prefix + "ffn_down.weight", rows: embedding, columns: length)
        postNorm = try loader.vector(prefix + "post_ffw_norm.weight", count: embedding)
    }

    var matrices: [WeightMatrix] { [gate, up, down] }
}

extension WeightLoader {
    /// The `count` matrices of a three-dimensional tensor `[columns, rows, count]`, one per slice.
    func matrixSlices(_ name: String, count: Int, rows: Int, columns: Int) throws(LanguageModelError) -> [WeightMatrix] {
        guard let tensor = file.tensor(named: name) else {
            throw LanguageModelError(.missingTensor, "model file has no tensor '\(name)'")
        }
        guard tensor.dimensions == [columns, rows, count] else {
            throw LanguageModelError(.tensorShape, "tensor '\(name)' has shape \(tensor.dimensions), expected [\(columns), \(rows), \(count)]")
        }
        guard Kernels.supportsMatrixMultiply(tensor.type), let rowBytes = tensor.type.byteCount(elements: columns) else {
            throw LanguageModelError(.unsupportedTensorType, "tensor '\(name)' has type \(tensor.type), which Ember cannot multiply yet")
        }
        let base = file.tensorData(tensor)
        return (0..<count).map { slice in
            weightMatrix("\(name)[\(slice)]", data: base + slice * rows * rowBytes, type: tensor.type, rows: rows, columns: columns)
        }
    }

    /// An optional vector: nil when the file has no tensor `name`.
    func optionalVector(_ name: String, count: Int) throws(LanguageModelError) -> [Float]? {
        file.tensor(named: name) == nil ? nil : try vector(name, count: count)
    }
}

extension Operations {
    /// GELU (tanh approximation) in place, read from the same half-precision table as `geGLU`,
    /// as ggml's CPU backend computes `ggml_gelu`.
    static func gelu(_ values: UnsafeMutablePointer<Float>, count: Int) {
        GELUTable.shared.values.withUnsafeBufferPointer { table in
            for i in 0..<count {
                let x = values[i]
                if x <= -10 {
                    values[i] = 0
                } else if x < 10 {
                    values[i] = table[Int(Float16(x).bitPattern)]
                }
            }
        }
    }

    /// √(Σ x²) of `count` values, the sum in double precision as ggml's `sum_rows` of squares.
    static func magnitude(_ values: UnsafePointer<Float>, count: Int) -> Float {
        var sum: Double = 0
        for i in 0..<count { sum += Double(values[i] * values[i]) }
        return Float(sum).squareRoot()
    }
}

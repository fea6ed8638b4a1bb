import EmberCore
import EmberGGUF
import EmberKernels
import Foundation

// Parts shared by the Gemma families whose layers depart too far from the plain block to share
// `InferenceSession`'s forward pass (Gemma 3n, Gemma 4): the hooks through which they plug in,
// per-layer embeddings, per-layer attention shapes with a KV cache shared across layers, and the
// scratch and arithmetic of their own forward passes.

// MARK: Hooks

/// An architecture that loads its own layer weights and runs its own forward pass; the model
/// still loads the token embeddings, the output norm and the output projection, and the session
/// still owns the KV cache, the logits and the thread pool.
protocol CustomForwardArchitecture: ArchitectureDefinition {
    /// The layers' weights (and any model-level weights besides embeddings and output).
    static func loadLayers(configuration: ModelConfiguration, traits: ArchitectureTraits, file: GGUFFile,
                           loader: WeightLoader) throws(LanguageModelError) -> any CustomLayerWeights

    /// The KV cache the forward pass needs.
    static func keyValueCacheShape(configuration: ModelConfiguration, file: GGUFFile) throws(LanguageModelError) -> KeyValueCacheShape

    /// Bytes of scratch one session's forward pass allocates beyond `InferenceSession`'s own.
    static func scratchByteCount(configuration: ModelConfiguration, file: GGUFFile, contextLength: Int, batchSize: Int,
                                 threadCount: Int) -> Int
}

/// Rows of a KV cache: how many layers store keys and values, and the widest row of each.
struct KeyValueCacheShape: Sendable, Equatable {
    var layerCount: Int
    var keyWidth: Int
    var valueWidth: Int
}

/// Loaded weights of a `CustomForwardArchitecture`, held by `TransformerModel`.
protocol CustomLayerWeights: Sendable {
    /// Every matrix multiplied for each token (the output projection aside), in order of use.
    var matrices: [WeightMatrix] { get }
    /// The matrices of layer `index`, for weight streaming.
    func layerMatrices(_ index: Int) -> [WeightMatrix]
    var keyValueCacheShape: KeyValueCacheShape { get }
    /// One session's forward pass: scratch for `batchSize` tokens and `contextLength` positions.
    func makeForwardPass(model: TransformerModel, contextLength: Int, batchSize: Int, pool: ThreadPool) -> any CustomForwardPass
}

/// One session's forward pass of a `CustomForwardArchitecture`.
protocol CustomForwardPass: AnyObject {
    /// Runs `tokens` at positions `cache.count ..< cache.count + tokens.count`, writes their keys
    /// and values into `cache` (without advancing its count) and leaves the final-normed hidden
    /// states, one row of embedding length per token, in `output`.
    func forward(_ tokens: UnsafeBufferPointer<Int32>, cache: KeyValueCache, output: UnsafeMutablePointer<Float>)
}

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
                projected: UnsafeMutablePointer<Float>, workspace: GemmaWorkspace, epsilon: Float) {
        let count = tokens.count
        let rowLength = width * layerCount
        let embedding = modelProjection.columns
        workspace.multiply(modelProjection, input: embeddings, tokens: count, output: projected)
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
               output: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>, workspace: GemmaWorkspace, epsilon: Float) {
        let width = gate.rows
        let embedding = projection.rows
        workspace.multiply(gate, input: input, tokens: tokens, output: scratch)
        Operations.gelu(scratch, count: tokens * width)
        for token in 0..<tokens {
            let row = scratch + token * width
            let slice = inputs + (token * layerCount + layer) * width
            for i in 0..<width { row[i] *= slice[i] }
        }
        workspace.multiply(projection, input: scratch, tokens: tokens, output: output)
        workspace.rmsNormRows(output, weight: postNorm, output: output, rows: tokens, length: embedding, epsilon: epsilon)
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

// MARK: Workspace

/// Scratch and arithmetic of one session's Gemma forward pass: buffers allocated once, matrix
/// products (with their own activation scratch), row norms, RoPE with frequency factors, and
/// attention over a KV cache whose layers may be read by several model layers.
///
/// Not thread-safe: owned by one `InferenceSession`.
final class GemmaWorkspace {
    let model: TransformerModel
    let pool: ThreadPool
    let batchSize: Int
    let contextLength: Int
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private let matmulScratch: UnsafeMutableRawPointer
    private let scores: UnsafeMutablePointer<Float>        // threads × context
    private let headScratch: UnsafeMutablePointer<Float>   // threads × 3 × longest head
    private let rotaryTables: UnsafeMutablePointer<Float>  // 2 × longest head
    private let longestHead: Int

    init(model: TransformerModel, matrices: [WeightMatrix], longestHead: Int, contextLength: Int, batchSize: Int, pool: ThreadPool) {
        self.model = model
        self.pool = pool
        self.batchSize = batchSize
        self.contextLength = contextLength
        self.longestHead = longestHead
        var scratchBytes = 64
        for matrix in matrices {
            scratchBytes = max(scratchBytes, Kernels.matmulScratchBytes(type: matrix.type, columns: matrix.columns, tokens: batchSize))
        }
        matmulScratch = .allocate(byteCount: scratchBytes, alignment: 64)
        scores = .allocate(capacity: pool.threadCount * contextLength)
        headScratch = .allocate(capacity: pool.threadCount * 3 * longestHead)
        rotaryTables = .allocate(capacity: 2 * longestHead)
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        matmulScratch.deallocate()
        scores.deallocate()
        headScratch.deallocate()
        rotaryTables.deallocate()
    }

    /// Bytes the workspace allocates besides its `buffer`s: activation scratch for the largest
    /// matrix product, attention scores and head rows per thread, and rotary tables.
    static func fixedByteCount(matrices: [(type: TensorType, columns: Int)], longestHead: Int, contextLength: Int, batchSize: Int,
                               threadCount: Int) -> Int {
        var scratchBytes = 64
        for matrix in matrices {
            scratchBytes = max(scratchBytes, Kernels.matmulScratchBytes(type: matrix.type, columns: matrix.columns, tokens: batchSize))
        }
        return scratchBytes + 4 * (threadCount * contextLength + threadCount * 3 * longestHead + 2 * longestHead)
    }

    /// A buffer of `count` floats that lives as long as the workspace.
    func buffer(_ count: Int) -> UnsafeMutablePointer<Float> {
        let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        pointer.initialize(repeating: 0, count: max(1, count))
        buffers.append(pointer)
        return pointer
    }

    /// `output = input · matrixᵀ` for `tokens` rows, the same kernels as `InferenceSession`.
    /// `rowByRow`: a matrix llama.cpp multiplies one dot product at a time (an expert's, through
    /// `mul_mat_id`), whose F32 sums add up in another order than tinyBLAS's.
    func multiply(_ matrix: WeightMatrix, input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>,
                  rowByRow: Bool = false) {
        if let interleaved = matrix.interleaved {
            Kernels.matmul(interleaved: interleaved, input: input, tokens: tokens, output: output, scratch: matmulScratch, pool: pool)
        } else if model.options.streamWeights {
            Kernels.matmulInInterleavedOrder(weights: matrix.data, type: matrix.type, rows: matrix.rows, columns: matrix.columns,
                                             input: input, tokens: tokens, output: output, scratch: matmulScratch, pool: pool,
                                             rowByRow: rowByRow, llamaOrder: model.llamaOrder)
        } else {
            Kernels.matmul(weights: matrix.data, type: matrix.type, rows: matrix.rows, columns: matrix.columns,
                           input: input, tokens: tokens, output: output, scratch: matmulScratch, pool: pool, rowByRow: rowByRow)
        }
    }

    /// RMS-normalizes `rows` rows of `length` (in place when `output` is `input`).
    func rmsNormRows(_ input: UnsafePointer<Float>, weight: [Float]?, output: UnsafeMutablePointer<Float>, rows: Int, length: Int,
                     epsilon: Float) {
        if let weight {
            weight.withUnsafeBufferPointer { weight in
                for row in 0..<rows {
                    Operations.rmsNorm(input + row * length, weight: weight.baseAddress, output: output + row * length,
                                       count: length, epsilon: epsilon)
                }
            }
        } else {
            for row in 0..<rows {
                Operations.rmsNorm(input + row * length, weight: nil, output: output + row * length, count: length, epsilon: epsilon)
            }
        }
    }

    /// Brings `matrices` (the next layer's) in ahead of use when weights stream.
    func prefetch(_ matrices: [WeightMatrix]) {
        guard model.options.streamWeights else { return }
        for matrix in matrices { model.file.prefetch(matrix.data, byteCount: matrix.byteCount) }
    }

    /// Drops matrices from memory after use when weights stream.
    func release(_ matrices: [WeightMatrix]) {
        guard model.options.streamWeights else { return }
        for matrix in matrices { model.file.releaseResidentPages(around: matrix.data, byteCount: matrix.byteCount) }
    }

    /// Rotates `headCount` heads of every token (NeoX halves) at positions from `firstPosition`:
    /// pair i turns by position · base^(-2i/n) / factor[i], as ggml computes the angles.
    func rotate(_ vectors: UnsafeMutablePointer<Float>, tokens: Int, headCount: Int, shape: GemmaAttentionShape, firstPosition: Int) {
        let rotary = RotaryEmbedding(dimensionCount: shape.rotaryDimensionCount, base: shape.ropeFrequencyBase,
                                     layout: .splitHalves, frequencyFactors: shape.frequencyFactors)
        let cosines = rotaryTables, sines = rotaryTables + longestHead
        for token in 0..<tokens {
            rotary.tables(position: firstPosition + token, cosines: cosines, sines: sines)
            rotary.rotate(vectors + token * headCount * shape.headLength, headCount: headCount, headLength: shape.headLength,
                          cosines: cosines, sines: sines)
        }
    }

    /// Writes `tokens` rows of keys and values (`shape.keyValueWidth` each) into the shape's cache
    /// layer at positions from `firstPosition`.
    func store(keys: UnsafePointer<Float>, values: UnsafePointer<Float>, shape: GemmaAttentionShape, cache: KeyValueCache,
               tokens: Int, firstPosition: Int) {
        let width = shape.keyValueWidth
        let layer = shape.cacheLayer
        for token in 0..<tokens {
            let position = firstPosition + token
            let keySource = keys + token * width, valueSource = values + token * width
            if cache.type == .f16 {
                let keyRow = cache.keyRow(layer: layer, position: position)
                let valueRow = cache.valueRow(layer: layer, position: position)
                for i in 0..<width {
                    keyRow[i] = Float16(keySource[i])
                    valueRow[i] = Float16(valueSource[i])
                }
            } else {
                let type = cache.type.tensorType
                Kernels.quantize(keySource, count: width, as: type, into: cache.keyBytes(layer: layer, position: position))
                Kernels.quantize(valueSource, count: width, as: type, into: cache.valueBytes(layer: layer, position: position))
            }
        }
    }

    /// Attention of every query head of `tokens` tokens over the cached positions each may see
    /// (causal, within the window of sliding layers), scaled by `scale` before the softmax. Like
    /// llama.cpp without flash attention, queries and softmax weights are rounded to half
    /// precision before their products with the half-precision cache.
    func attend(queries: UnsafePointer<Float>, shape: GemmaAttentionShape, scale: Float, cache: KeyValueCache, tokens: Int,
                firstPosition: Int, output: UnsafeMutablePointer<Float>) {
        let headCount = shape.headCount
        let headLength = shape.headLength
        let group = shape.headCount / shape.keyValueHeadCount
        let window = shape.window
        let layer = shape.cacheLayer
        let scores = self.scores, headScratch = self.headScratch
        let contextLength = self.contextLength, longestHead = self.longestHead
        let quantized = cache.type != .f16
        let elementType = cache.type.tensorType
        let headBytes = cache.type.rowBytes(headLength)
        let keyWidth = cache.keyWidth, valueWidth = cache.valueWidth
        pool.parallelFor(tokens * headCount) { range, thread in
            let threadScores = scores + thread * contextLength
            let query = headScratch + thread * 3 * longestHead
            let keyFloats = query + longestHead
            let valueFloats = keyFloats + longestHead
            for task in range {
                let token = task / headCount, head = task % headCount
                let keyValueHead = head / group
                let position = firstPosition + token
                let first = window.map { max(0, position - $0 + 1) } ?? 0
                let source = queries + (token * headCount + head) * headLength
                for i in 0..<headLength { query[i] = Float(Float16(source[i])) }
                let out = output + (token * headCount + head) * headLength
                for i in 0..<headLength { out[i] = 0 }
                if quantized {
                    for visible in first...position {
                        let key = cache.keyBytes(layer: layer, position: visible) + keyValueHead * headBytes
                        Kernels.dequantize(elementType, source: key, into: keyFloats, count: headLength)
                        threadScores[visible - first] = Operations.dot(query, keyFloats, count: headLength) * scale
                    }
                    Operations.attentionSoftmax(threadScores, count: position - first + 1, firstCell: first)
                    for visible in first...position {
                        let weight = Float(Float16(threadScores[visible - first]))
                        let value = cache.valueBytes(layer: layer, position: visible) + keyValueHead * headBytes
                        Kernels.dequantize(elementType, source: value, into: valueFloats, count: headLength)
                        for i in 0..<headLength { out[i] += weight * valueFloats[i] }
                    }
                    continue
                }
                let keyBase = cache.keyRow(layer: layer, position: 0) + keyValueHead * headLength
                let visibleCount = position - first + 1
                if headLength % 16 == 0 {
                    AttentionKernels.scoreHalfKeys(query: query, keys: keyBase + first * keyWidth, keyStride: keyWidth,
                                                   count: visibleCount, length: headLength, scale: scale, scores: threadScores)
                } else {
                    for visible in first...position {
                        let key = keyBase + visible * keyWidth
                        for i in 0..<headLength { keyFloats[i] = Float(key[i]) }
                        threadScores[visible - first] = Operations.dot(query, keyFloats, count: headLength) * scale
                    }
                }
                Operations.attentionSoftmax(threadScores, count: visibleCount, firstCell: first)
                // The weights rounded to half precision once, then summed over the visible values.
                for i in 0..<visibleCount { threadScores[i] = Float(Float16(threadScores[i])) }
                let valueBase = cache.valueRow(layer: layer, position: 0) + keyValueHead * headLength
                AttentionKernels.weightHalfValues(weights: threadScores, values: valueBase + first * valueWidth, valueStride: valueWidth,
                                                  count: visibleCount, firstCell: first, length: headLength, output: out)
            }
        }
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

    /// Final-logit softcapping: `cap · tanh(x / cap)`.
    static func softcap(_ values: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
        let inverse = 1 / cap
        for i in 0..<count { values[i] = tanhf(values[i] * inverse) * cap }
    }
}

import EmberCore
import EmberGGUF
import EmberKernels
import Foundation

/// A weight matrix inside the mapped model file: `rows` rows of `columns` elements of `type`.
///
/// `@unchecked Sendable`: `data` points into an immutable read-only mapping owned by the
/// `GGUFFile` that the enclosing `TransformerModel` keeps alive.
public struct WeightMatrix: @unchecked Sendable {
    public let name: String
    public let data: UnsafeRawPointer
    public let type: TensorType
    public let rows: Int
    public let columns: Int
    /// How the matrix is multiplied, decided once at load (see `WeightLoader.weightMatrix`).
    public let kernel: MatrixKernel
    /// The file the matrix streams from (weights brought in only while they run); nil when they
    /// stay resident.
    let streamedFrom: GGUFFile?
    /// Rows multiplied at once when the matrix streams in slices (the output projection while
    /// weights stream: see `ForwardBlocks.project`); nil to multiply it whole.
    var sliceRows: Int? = nil

    /// The same weights rearranged for the kernels, when the type has such a layout.
    public var interleaved: InterleavedWeights? { kernel.interleaved }
    public var rowBytes: Int { type.byteCount(elements: columns) ?? 0 }
    public var byteCount: Int { rowBytes * rows }

    /// Asks for the matrix's file pages ahead of use, when it streams.
    func prefetch() {
        streamedFrom?.prefetch(data, byteCount: byteCount)
    }

    /// Drops the matrix's file pages after use, when it streams.
    func releasePages() {
        streamedFrom?.releaseResidentPages(around: data, byteCount: byteCount)
    }
}

extension WeightMatrix {
    /// The matrix multiplied in slices of about `ScratchLayout.outputSliceBytes` when it streams.
    func slicedWhenStreamed() -> WeightMatrix {
        var matrix = self
        if streamedFrom != nil { matrix.sliceRows = ScratchLayout.outputSliceRows(rowBytes: rowBytes) }
        return matrix
    }
}

/// The weights of one transformer block.
struct LayerWeights: Sendable {
    var attentionNorm: [Float]
    var query: WeightMatrix
    var key: WeightMatrix
    var value: WeightMatrix
    var attentionOutput: WeightMatrix
    var queryNorm: [Float]?
    var keyNorm: [Float]?
    var postAttentionNorm: [Float]?
    var feedForwardNorm: [Float]
    /// The dense feed-forward matrices; nil in a mixture-of-experts block.
    var gate: WeightMatrix?
    var up: WeightMatrix?
    var down: WeightMatrix?
    var postFeedForwardNorm: [Float]?
    /// The router and experts of a mixture-of-experts block (see `MixtureOfExperts.swift`).
    var experts: ExpertLayerWeights? = nil
}

/// How weights are brought into memory.
public struct LoadOptions: Sendable, Equatable {
    /// Rearrange weights for the fast kernels (a resident copy); off keeps the file's layout (the
    /// CLI turns it off with `EMBER_INTERLEAVE=0`).
    public var interleave: Bool
    /// Keep weights in the file mapping and bring each layer in only while it runs, releasing it
    /// afterwards and prefetching the next: the resident set stays near one layer's weights.
    public var streamWeights: Bool

    public init(interleave: Bool = true, streamWeights: Bool = false) {
        self.interleave = interleave && !streamWeights
        self.streamWeights = streamWeights
    }
}

/// A decoder-only transformer loaded from a GGUF file: configuration, architecture traits and
/// weights that stay in the file's memory mapping. Immutable; share it between sessions.
public final class TransformerModel: Sendable {
    public let file: GGUFFile
    public let configuration: ModelConfiguration
    public let traits: ArchitectureTraits
    public let options: LoadOptions
    let tokenEmbedding: WeightMatrix
    let output: WeightMatrix
    let outputNorm: [Float]
    let layers: [LayerWeights]
    /// The layers of an architecture with its own forward pass (`layers` is then empty).
    let customLayers: (any CustomLayerWeights)?

    /// Loads the model in `file`, checking that every tensor the architecture needs is present
    /// with the shape the configuration implies.
    public init(file: GGUFFile, options: LoadOptions = LoadOptions()) throws(LanguageModelError) {
        let configuration = try ModelConfiguration(gguf: file)
        self.options = options
        guard let definition = ArchitectureRegistry.definition(for: configuration.architecture) else {
            throw LanguageModelError(.unsupportedArchitecture,
                "architecture '\(configuration.architecture)' is not supported (supported: \(ArchitectureRegistry.supportedNames.joined(separator: ", ")))")
        }
        self.file = file
        self.configuration = configuration
        self.traits = try definition.traits(configuration: configuration, gguf: file)
        guard traits.layers.count == configuration.layerCount else {
            throw LanguageModelError(.missingMetadata, "architecture traits describe \(traits.layers.count) layers, the file has \(configuration.layerCount)")
        }

        var loader = WeightLoader(file: file)
        loader.interleave = options.interleave
        loader.streamWeights = options.streamWeights
        let embedding = configuration.embeddingLength
        let headsWidth = configuration.headCount * configuration.keyLength
        let keyWidth = configuration.keyValueHeadCount * configuration.keyLength
        let valueWidth = configuration.keyValueHeadCount * configuration.valueLength
        let feedForward = configuration.feedForwardLength

        if file.tensor(named: "output.weight") != nil {
            // The embedding table is only looked up by row: no rearranged copy.
            var rowLoader = loader
            rowLoader.interleave = false
            tokenEmbedding = try rowLoader.matrix("token_embd.weight", rows: configuration.vocabularySize, columns: embedding)
            output = try loader.matrix("output.weight", rows: configuration.vocabularySize, columns: embedding).slicedWhenStreamed()
        } else {
            tokenEmbedding = try loader.matrix("token_embd.weight", rows: configuration.vocabularySize, columns: embedding)
            output = tokenEmbedding.slicedWhenStreamed()
        }
        outputNorm = try loader.vector("output_norm.weight", count: embedding)
        if let custom = definition as? any CustomForwardArchitecture.Type {
            customLayers = try custom.loadLayers(configuration: configuration, traits: traits, file: file, loader: loader)
        } else {
            customLayers = nil
        }

        var layers: [LayerWeights] = []
        layers.reserveCapacity(configuration.layerCount)
        for index in 0..<(customLayers == nil ? configuration.layerCount : 0) {
            let prefix = "blk.\(index)."
            let hasNorms = traits.hasQueryKeyNorms
            let hasPost = traits.hasPostNorms
            // Fused projections (phi3) are split into row ranges: the same bytes, three matrices.
            let queryKeyValue: [WeightMatrix] = file.tensor(named: prefix + "attn_qkv.weight") != nil
                ? try loader.rowRanges(prefix + "attn_qkv.weight", rows: [headsWidth, keyWidth, valueWidth], columns: embedding)
                : [try loader.matrix(prefix + "attn_q.weight", rows: headsWidth, columns: embedding),
                   try loader.matrix(prefix + "attn_k.weight", rows: keyWidth, columns: embedding),
                   try loader.matrix(prefix + "attn_v.weight", rows: valueWidth, columns: embedding)]
            let experts = traits.mixtureOfExperts
            // A mixture-of-experts block has no dense feed-forward matrices.
            let gateUp: [WeightMatrix?] = experts != nil ? [nil, nil] : file.tensor(named: prefix + "ffn_gate.weight") == nil
                ? try loader.rowRanges(prefix + "ffn_up.weight", rows: [feedForward, feedForward], columns: embedding)
                : [try loader.matrix(prefix + "ffn_gate.weight", rows: feedForward, columns: embedding),
                   try loader.matrix(prefix + "ffn_up.weight", rows: feedForward, columns: embedding)]
            layers.append(LayerWeights(
                attentionNorm: try loader.vector(prefix + "attn_norm.weight", count: embedding),
                query: queryKeyValue[0],
                key: queryKeyValue[1],
                value: queryKeyValue[2],
                attentionOutput: try loader.matrix(prefix + "attn_output.weight", rows: embedding,
                                                   columns: configuration.headCount * configuration.valueLength),
                queryNorm: hasNorms ? try loader.vector(prefix + "attn_q_norm.weight", count: configuration.keyLength) : nil,
                keyNorm: hasNorms ? try loader.vector(prefix + "attn_k_norm.weight", count: configuration.keyLength) : nil,
                postAttentionNorm: hasPost ? try loader.vector(prefix + "post_attention_norm.weight", count: embedding) : nil,
                feedForwardNorm: try loader.vector(prefix + "ffn_norm.weight", count: embedding),
                gate: gateUp[0],
                up: gateUp[1],
                down: experts == nil ? try loader.matrix(prefix + "ffn_down.weight", rows: embedding, columns: feedForward) : nil,
                postFeedForwardNorm: hasPost ? try loader.vector(prefix + "post_ffw_norm.weight", count: embedding) : nil,
                experts: try experts.map { traits throws(LanguageModelError) in
                    try loader.expertLayer(prefix: prefix, embedding: embedding, traits: traits)
                }))
        }
        self.layers = layers
        // Streaming starts from nothing resident: norms were copied out, matrices stay in the file.
        if options.streamWeights { file.releaseAllResidentPages() }
    }

    /// Writes the embedding rows of `tokens` to `output` (`embeddingLength` floats each). With
    /// streamed weights, the file pages each row was read from are dropped at once.
    func lookUpEmbeddings<Tokens: Collection<Int32>>(_ tokens: Tokens, into output: UnsafeMutablePointer<Float>) {
        let table = tokenEmbedding, width = configuration.embeddingLength
        for (index, token) in tokens.enumerated() {
            let row = table.data + Int(token) * table.rowBytes
            Kernels.dequantize(table.type, source: row, into: output + index * width, count: width)
            table.streamedFrom?.releaseResidentPages(around: row, byteCount: table.rowBytes)
        }
    }

    /// Every matrix of layer `index` that streaming prefetches and releases as a whole: all of a
    /// dense layer; a mixture-of-experts layer's attention and router, its experts being brought
    /// in one by one once routed (see `MixtureOfExpertsBlock`).
    func layerMatrices(_ index: Int) -> [WeightMatrix] {
        if let customLayers { return customLayers.layerMatrices(index) }
        let layer = layers[index]
        return [layer.query, layer.key, layer.value, layer.attentionOutput] + [layer.gate, layer.up, layer.down].compactMap { $0 }
            + (layer.experts.map { [$0.router] } ?? [])
    }

    /// Bytes of the largest layer's matrices (what streaming keeps resident, twice with prefetch);
    /// for a mixture of experts, the experts resident at once while streaming.
    public var largestLayerBytes: Int {
        (0..<configuration.layerCount).map { index in
            var bytes = layerMatrices(index).reduce(0) { $0 + $1.byteCount }
            if customLayers == nil, let experts = layers[index].experts {
                let largest = (0..<experts.expertCount).map { experts.expertBytes($0) }.max() ?? 0
                bytes += min(experts.expertCount, MixtureOfExpertsBlock.streamedResidentExperts) * largest
            }
            return bytes
        }.max() ?? 0
    }

    /// Every weight matrix the forward pass may multiply by, in order of use (every expert's).
    var matrices: [WeightMatrix] {
        layers.flatMap { layer in
            [layer.query, layer.key, layer.value, layer.attentionOutput] + [layer.gate, layer.up, layer.down].compactMap { $0 }
                + (layer.experts?.matrices ?? [])
        } + (customLayers?.matrices ?? []) + [output]
    }

    /// Layers and row widths of the KV cache a session of this model needs.
    var keyValueCacheShape: KeyValueCacheShape {
        customLayers?.keyValueCacheShape ?? KeyValueCacheShape(
            layerCount: configuration.layerCount,
            keyWidth: configuration.keyValueHeadCount * configuration.keyLength,
            valueWidth: configuration.keyValueHeadCount * configuration.valueLength)
    }

    /// Bytes of weights read to produce one token (the embedding row aside): every dense matrix
    /// once and, in a mixture-of-experts block, the router and `usedExpertCount` experts — the
    /// active bytes. `totalWeightBytes` counts every expert.
    public var weightBytesPerToken: Int {
        let used = traits.mixtureOfExperts?.usedExpertCount ?? 0
        // Layers with their own forward pass: every matrix they multiply (looked-up tables aside).
        let custom = customLayers?.matrices.reduce(0) { $0 + $1.byteCount } ?? 0
        return layers.enumerated().reduce(output.byteCount + custom) { total, element in
            let (index, layer) = element
            var bytes = layerMatrices(index).reduce(0) { $0 + $1.byteCount }
            if let experts = layer.experts {
                // Experts of a layer have the same shapes and type, so any `used` of them weigh the same.
                bytes += used * experts.expertBytes(0)
            }
            return total + bytes
        }
    }

    /// Bytes of every weight matrix (every expert of a mixture-of-experts model; the embedding
    /// table aside unless it is also the output projection).
    public var totalWeightBytes: Int {
        matrices.reduce(0) { $0 + $1.byteCount }
    }

    /// Bytes of the expert matrices of every layer (0 for a dense model).
    public var expertWeightBytes: Int {
        layers.reduce(0) { $0 + ($1.experts?.allExpertBytes ?? 0) }
    }
}

/// Binds named tensors of a GGUF file to weights, checking types and shapes.
struct WeightLoader {
    let file: GGUFFile
    /// Whether Q8_0 matrices add up in llama.cpp's order: only when every matrix of the file is of
    /// a format whose kernels follow llama.cpp's arithmetic (`QuantizedFormat.followsLlamaCpp`), so the model can give
    /// llama.cpp's logits bit for bit; otherwise the faster per-block order (the logits differ
    /// from llama.cpp's in the last bits either way). Decided once per file.
    let llamaOrder: Bool
    /// Rearrange weights for the kernels (`InterleavedWeights`); off keeps the file's layout.
    var interleave = true
    /// Threads that rearrange weights while loading.
    var pool: ThreadPool? = ThreadPool(threadCount: max(1, min(4, ProcessInfo.processInfo.activeProcessorCount)))
    /// Weights stream from the file: matrices stay in it, summed in the interleaved kernels' order
    /// (`MatrixKernel`), and the file pages a copied-out vector was read from are dropped (nothing
    /// of the file stays resident while loading, not even the folios around the norms).
    var streamWeights = false

    init(file: GGUFFile) {
        self.file = file
        llamaOrder = file.tensors.allSatisfy { $0.dimensions.count < 2 || QuantizedFormat.format($0.type)?.followsLlamaCpp == true }
    }

    /// A weight matrix over `data` (rows in the file's layout) with its kernel: its rearranged copy
    /// when `interleave` is on and the type has one (each copied chunk's file pages are released),
    /// else the file's rows — in the rearranged kernels' order when weights stream, so streaming
    /// gives the same tokens.
    func weightMatrix(_ name: String, data: UnsafeRawPointer, type: TensorType, rows: Int, columns: Int,
                      interleave: Bool? = nil) -> WeightMatrix {
        let interleaved = (interleave ?? self.interleave)
            ? InterleavedWeights(type: type, data: data, rows: rows, columns: columns, pool: pool, llamaOrder: llamaOrder) { pointer, count in
                file.releaseResidentPages(around: pointer, byteCount: count)
            }
            : nil
        let kernel = interleaved.map { MatrixKernel(interleaved: $0) }
            ?? MatrixKernel(type: type, inInterleavedOrder: streamWeights, llamaOrder: llamaOrder)
        return WeightMatrix(name: name, data: data, type: type, rows: rows, columns: columns, kernel: kernel,
                            streamedFrom: streamWeights ? file : nil)
    }

    func matrix(_ name: String, rows: Int, columns: Int, interleave: Bool? = nil) throws(LanguageModelError) -> WeightMatrix {
        guard let tensor = file.tensor(named: name) else {
            throw LanguageModelError(.missingTensor, "model file has no tensor '\(name)'")
        }
        guard tensor.dimensions.count == 2, tensor.dimensions[0] == columns, tensor.dimensions[1] == rows else {
            throw LanguageModelError(.tensorShape, "tensor '\(name)' has shape \(tensor.dimensions), expected [\(columns), \(rows)]")
        }
        guard Kernels.supportsMatrixMultiply(tensor.type) else {
            throw LanguageModelError(.unsupportedTensorType, "tensor '\(name)' has type \(tensor.type), which Ember cannot multiply yet")
        }
        return weightMatrix(name, data: file.tensorData(tensor), type: tensor.type, rows: rows, columns: columns, interleave: interleave)
    }

    /// A fused matrix of `rows.reduce(0, +)` rows, as one matrix per consecutive row range
    /// (llama.cpp's views of a fused projection's output).
    func rowRanges(_ name: String, rows: [Int], columns: Int) throws(LanguageModelError) -> [WeightMatrix] {
        let whole = try matrix(name, rows: rows.reduce(0, +), columns: columns, interleave: false)
        var first = 0
        return rows.enumerated().map { index, count in
            let data = whole.data + first * whole.rowBytes
            first += count
            return weightMatrix("\(name)[\(index)]", data: data, type: whole.type, rows: count, columns: columns)
        }
    }

    func vector(_ name: String, count: Int) throws(LanguageModelError) -> [Float] {
        guard let tensor = file.tensor(named: name) else {
            throw LanguageModelError(.missingTensor, "model file has no tensor '\(name)'")
        }
        guard tensor.elementCount == count else {
            throw LanguageModelError(.tensorShape, "tensor '\(name)' has \(tensor.elementCount) elements, expected \(count)")
        }
        guard Kernels.supportsMatrixMultiply(tensor.type) || tensor.type == .f32 else {
            throw LanguageModelError(.unsupportedTensorType, "tensor '\(name)' has type \(tensor.type), which Ember cannot read")
        }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { buffer in
            Kernels.dequantize(tensor.type, source: file.tensorData(tensor), into: buffer.baseAddress!, count: count)
        }
        if streamWeights { file.releaseResidentPages(around: file.tensorData(tensor), byteCount: tensor.byteCount) }
        return values
    }
}

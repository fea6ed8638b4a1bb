import Foundation
/// What one token of a model costs, independent of the device: the numbers a roofline needs.
///
/// Built from a GGUF file's tensors by the simulation, or from a named specification for models
/// whose weights are not at hand.
public struct ModelWorkload: Sendable, Equatable, Codable {
    public var name: String
    /// Weights touched per token.
    public var parameterCount: Double
    /// Weight bytes read per decoded token (every matrix once; the embedding table only for one row).
    public var weightBytesPerToken: Double
    /// Matrix-multiply FLOPs per token (2 per weight).
    public var matmulFlopsPerToken: Double
    /// Attention FLOPs per token per earlier position (QKᵀ and AV over all layers and heads).
    public var attentionFlopsPerPosition: Double
    /// KV-cache bytes written per token and read per position at f16.
    public var keyValueBytesPerToken: Double
    /// Largest batch one forward pass takes; larger prompts re-read the weights per batch.
    public var batchSize: Int
    /// Bytes of every weight in the file (embedding tables, every expert, per-layer embeddings):
    /// what must be resident, or streamed, to run. Nil: `weightBytesPerToken`.
    public var totalWeightBytes: Double?
    /// Transformer blocks (weight streaming keeps about two resident). Nil: unknown.
    public var layerCount: Int?
    /// Mixture of experts: bytes of all routed experts' weights, and the fraction of experts each
    /// token uses. A decode step reads `expertsUsedFraction` of them (inside `weightBytesPerToken`);
    /// a prompt batch of n tokens touches 1 − (1 − fraction)ⁿ of them.
    public var expertWeightBytes: Double?
    public var expertsUsedFraction: Double?

    /// Bytes that must be in memory for the weights.
    public var residentWeightBytes: Double { totalWeightBytes ?? weightBytesPerToken }

    public init(name: String, parameterCount: Double, weightBytesPerToken: Double, matmulFlopsPerToken: Double,
                attentionFlopsPerPosition: Double, keyValueBytesPerToken: Double, batchSize: Int = 512) {
        self.name = name
        self.parameterCount = parameterCount
        self.weightBytesPerToken = weightBytesPerToken
        self.matmulFlopsPerToken = matmulFlopsPerToken
        self.attentionFlopsPerPosition = attentionFlopsPerPosition
        self.keyValueBytesPerToken = keyValueBytesPerToken
        self.batchSize = batchSize
    }

    /// A transformer's workload from its shape: `layers` blocks of attention (`heads` query heads,
    /// `keyValueHeads` key/value heads of `headLength`) and a gated feed-forward of
    /// `feedForwardLength`, a vocabulary projection of `vocabularySize`, weights at
    /// `bitsPerWeight` on average.
    public static func transformer(name: String, layers: Int, embeddingLength: Int, feedForwardLength: Int,
                                   heads: Int, keyValueHeads: Int, headLength: Int, vocabularySize: Int,
                                   bitsPerWeight: Double) -> ModelWorkload {
        let attention = Double(embeddingLength * headLength * (2 * heads + 2 * keyValueHeads))
        let feedForward = Double(3 * embeddingLength * feedForwardLength)
        let parameters = Double(layers) * (attention + feedForward) + Double(vocabularySize * embeddingLength)
        var workload = ModelWorkload(
            name: name,
            parameterCount: parameters,
            weightBytesPerToken: parameters * bitsPerWeight / 8,
            matmulFlopsPerToken: 2 * parameters,
            attentionFlopsPerPosition: Double(2 * 2 * layers * heads * headLength),
            keyValueBytesPerToken: Double(2 * layers * keyValueHeads * headLength * 2))
        workload.layerCount = layers
        return workload
    }

    /// A workload from published parameter counts, for models whose exact tensor shapes matter
    /// less than their size: `activeParameters` multiplied per token (experts in use, the output
    /// projection; not embedding lookups), `totalParameters` stored (every expert, per-layer
    /// embedding tables), attention of `heads` × `headLength` on every layer, and a KV cache on
    /// `keyValueLayers` layers (fewer when layers share their KV).
    public static func published(name: String, activeParameters: Double, totalParameters: Double, layers: Int,
                                 heads: Int, keyValueHeads: Int, headLength: Int, keyValueLayers: Int? = nil,
                                 expertParameters: Double? = nil, expertsUsedFraction: Double? = nil,
                                 bitsPerWeight: Double) -> ModelWorkload {
        var workload = ModelWorkload(
            name: name,
            parameterCount: activeParameters,
            weightBytesPerToken: activeParameters * bitsPerWeight / 8,
            matmulFlopsPerToken: 2 * activeParameters,
            attentionFlopsPerPosition: Double(2 * 2 * layers * heads * headLength),
            keyValueBytesPerToken: Double(2 * (keyValueLayers ?? layers) * keyValueHeads * headLength * 2))
        workload.totalWeightBytes = totalParameters * bitsPerWeight / 8
        workload.layerCount = layers
        workload.expertWeightBytes = expertParameters.map { $0 * bitsPerWeight / 8 }
        workload.expertsUsedFraction = expertsUsedFraction
        return workload
    }

    /// FLOPs and bytes of decoding one token at context position `position`.
    public func decodeCost(position: Int) -> WorkCost {
        WorkCost(flops: matmulFlopsPerToken + attentionFlopsPerPosition * Double(position),
                 bytes: weightBytesPerToken + keyValueBytesPerToken * Double(position + 1),
                 kind: .decode)
    }

    /// FLOPs and bytes of one decode step of several sequences at once, the next token of each
    /// at context positions `positions`: every weight is read once for all of them (a mixture of
    /// experts reads the union of the experts they route to); each reads its own KV cache.
    public func decodeCost(positions: [Int]) -> WorkCost {
        guard positions.count > 1 else { return decodeCost(position: positions.first ?? 0) }
        let sequences = Double(positions.count)
        let visible = positions.reduce(0.0) { $0 + Double($1) }
        return WorkCost(flops: matmulFlopsPerToken * sequences + attentionFlopsPerPosition * visible,
                        bytes: weightBytes(touchedBy: sequences) + keyValueBytesPerToken * (visible + sequences),
                        kind: .decode)
    }

    /// Weight bytes a forward pass of `tokens` tokens reads.
    private func weightBytes(touchedBy tokens: Double) -> Double {
        guard let expertBytes = expertWeightBytes, let fraction = expertsUsedFraction else { return weightBytesPerToken }
        // A batch routes its tokens to more experts than one token does.
        let touched = 1 - pow(1 - fraction, min(tokens, Double(batchSize)))
        return weightBytesPerToken + expertBytes * (touched - fraction)
    }

    /// FLOPs and bytes of processing `count` prompt tokens after `position` cached ones.
    public func prefillCost(tokens count: Int, position: Int) -> WorkCost {
        let tokens = Double(count)
        let batches = Double((count + batchSize - 1) / max(1, batchSize))
        let positions = tokens * Double(position) + tokens * (tokens + 1) / 2
        let weightBytesPerBatch = weightBytes(touchedBy: tokens)
        return WorkCost(flops: matmulFlopsPerToken * tokens + attentionFlopsPerPosition * positions,
                        bytes: weightBytesPerBatch * batches + keyValueBytesPerToken * (Double(position) + tokens) * batches,
                        kind: .prefill)
    }
}

/// An amount of model work: arithmetic and memory traffic.
public struct WorkCost: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case prefill, decode }
    public var flops: Double
    public var bytes: Double
    public var kind: Kind
}

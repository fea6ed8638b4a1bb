import EmberGGUF

/// The hyperparameters of a decoder-only transformer, read from a GGUF file's
/// `<architecture>.*` metadata and named in full words.
public struct ModelConfiguration: Sendable, Equatable {
    public var architecture: String
    public var name: String
    public var layerCount: Int
    public var embeddingLength: Int
    public var feedForwardLength: Int
    public var headCount: Int
    public var keyValueHeadCount: Int
    /// Length of one attention head's query and key vectors.
    public var keyLength: Int
    /// Length of one attention head's value vector.
    public var valueLength: Int
    public var ropeDimensionCount: Int
    public var ropeFrequencyBase: Float
    public var normEpsilon: Float
    public var trainedContextLength: Int
    public var vocabularySize: Int
    /// Sliding attention window on local layers, when the architecture has one.
    public var slidingWindow: Int?

    /// Reads the configuration of `gguf`, whose `general.architecture` names the key prefix.
    public init(gguf: GGUFFile) throws(LanguageModelError) {
        guard let architecture = gguf.string("general.architecture") else {
            throw LanguageModelError(.missingMetadata, "model file has no general.architecture")
        }
        func required(_ suffix: String) throws(LanguageModelError) -> Int {
            let key = "\(architecture).\(suffix)"
            guard let value = gguf.integer(key), value > 0 else {
                throw LanguageModelError(.missingMetadata, "model file is missing '\(key)' (a positive integer)")
            }
            return value
        }
        self.architecture = architecture
        self.name = gguf.string("general.name") ?? architecture
        self.layerCount = try required("block_count")
        self.embeddingLength = try required("embedding_length")
        self.feedForwardLength = try required("feed_forward_length")
        self.headCount = try required("attention.head_count")
        self.keyValueHeadCount = gguf.integer("\(architecture).attention.head_count_kv") ?? headCount
        let defaultHeadLength = embeddingLength / headCount
        self.keyLength = gguf.integer("\(architecture).attention.key_length") ?? defaultHeadLength
        self.valueLength = gguf.integer("\(architecture).attention.value_length") ?? defaultHeadLength
        self.ropeDimensionCount = gguf.integer("\(architecture).rope.dimension_count") ?? keyLength
        self.ropeFrequencyBase = gguf.float("\(architecture).rope.freq_base") ?? 10_000
        self.normEpsilon = gguf.float("\(architecture).attention.layer_norm_rms_epsilon") ?? 1e-5
        self.trainedContextLength = gguf.integer("\(architecture).context_length") ?? 2048
        self.slidingWindow = gguf.integer("\(architecture).attention.sliding_window")
        if let size = gguf.integer("\(architecture).vocab_size") {
            self.vocabularySize = size
        } else if let tokens = gguf.metadata["tokenizer.ggml.tokens"], case .array(let array) = tokens {
            self.vocabularySize = array.count
        } else {
            throw LanguageModelError(.missingMetadata, "model file has neither \(architecture).vocab_size nor tokenizer.ggml.tokens")
        }
        guard keyValueHeadCount > 0, headCount % keyValueHeadCount == 0 else {
            throw LanguageModelError(.missingMetadata,
                "attention.head_count (\(headCount)) is not a multiple of head_count_kv (\(keyValueHeadCount))")
        }
        guard ropeDimensionCount <= keyLength, ropeDimensionCount % 2 == 0 else {
            throw LanguageModelError(.missingMetadata, "rope.dimension_count \(ropeDimensionCount) does not fit key length \(keyLength)")
        }
    }
}

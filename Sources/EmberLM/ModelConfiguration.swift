import EmberGGUF
import Foundation

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
    /// Context extension of the rotary embedding (`rope.scaling.*`).
    public var ropeScaling: RopeScaling
    /// Llama-4-style attention temperature tuning (`attention.temperature_scale`): queries at
    /// position p are multiplied by 1 + scale · log(1 + ⌊p / original context⌋). Nil when absent.
    public var attentionTemperatureScale: Float?

    /// The largest values Ember accepts from a model file, far above any released model's: every
    /// count and dimension is checked against these (and against the tensors) before anything is
    /// sized from it, so a hostile file cannot make a plan overflow or an allocation explode.
    public enum Limits {
        public static let layerCount = 1 << 12
        public static let embeddingLength = 1 << 17
        public static let feedForwardLength = 1 << 20
        public static let headCount = 1 << 12
        public static let headLength = 1 << 14
        public static let vocabularySize = 1 << 23
        /// Positions: the longest trained context, sliding window or `--context` Ember plans for.
        public static let contextLength = 1 << 24
        public static let expertCount = 1 << 12
    }

    /// `<architecture>.<suffix>` of `gguf` when present, checked to lie in `range`.
    static func integer(_ gguf: GGUFFile, _ architecture: String, _ suffix: String,
                        in range: ClosedRange<Int>) throws(LanguageModelError) -> Int? {
        guard let value = gguf.integer("\(architecture).\(suffix)") else {
            if gguf.metadata["\(architecture).\(suffix)"] != nil, gguf.integers("\(architecture).\(suffix)") == nil {
                throw LanguageModelError(.missingMetadata, "'\(architecture).\(suffix)' is not an integer")
            }
            return nil
        }
        guard range.contains(value) else {
            throw LanguageModelError(.missingMetadata,
                "'\(architecture).\(suffix)' is \(value), outside \(range.lowerBound)...\(range.upperBound)")
        }
        return value
    }

    /// Reads the configuration of `gguf`, whose `general.architecture` names the key prefix, and
    /// checks every count and dimension against sane limits and against the tensors present.
    public init(gguf: GGUFFile) throws(LanguageModelError) {
        guard let architecture = gguf.string("general.architecture") else {
            throw LanguageModelError(.missingMetadata, "model file has no general.architecture")
        }
        func unsupported() -> LanguageModelError {
            LanguageModelError(.unsupportedArchitecture,
                "architecture '\(architecture)' is not supported (supported: \(ArchitectureRegistry.supportedNames.joined(separator: ", ")))")
        }
        func limited(_ suffix: String, _ value: Int, _ range: ClosedRange<Int>) throws(LanguageModelError) -> Int {
            guard range.contains(value) else {
                throw LanguageModelError(.missingMetadata,
                    "'\(architecture).\(suffix)' is \(value), outside \(range.lowerBound)...\(range.upperBound)")
            }
            return value
        }
        func required(_ suffix: String, limit: Int) throws(LanguageModelError) -> Int {
            let key = "\(architecture).\(suffix)"
            // Per-layer arrays (Gemma 4's feed-forward lengths) give their largest value.
            if let values = gguf.integers(key) {
                for value in values where !(0...limit).contains(value) {
                    throw LanguageModelError(.missingMetadata, "'\(key)' holds \(value), outside 0...\(limit)")
                }
            }
            guard let value = gguf.integer(key) ?? gguf.integers(key)?.max(), value > 0 else {
                // A file of another architecture lacks the keys: say so rather than name a key.
                if ArchitectureRegistry.definition(for: architecture) == nil { throw unsupported() }
                if let present = gguf.metadata[key] {
                    throw LanguageModelError(.missingMetadata, "'\(key)' is \(present), not a positive integer up to \(limit)")
                }
                throw LanguageModelError(.missingMetadata, "model file is missing '\(key)' (a positive integer)")
            }
            return try limited(suffix, value, 1...limit)
        }
        func optional(_ suffix: String, limit: Int) throws(LanguageModelError) -> Int? {
            try gguf.integer("\(architecture).\(suffix)").map { value throws(LanguageModelError) in try limited(suffix, value, 1...limit) }
        }
        func finite(_ suffix: String, _ value: Float?) throws(LanguageModelError) -> Float? {
            guard let value else { return nil }
            guard value.isFinite else {
                throw LanguageModelError(.missingMetadata, "'\(architecture).\(suffix)' is \(value), not a finite number")
            }
            return value
        }
        self.architecture = architecture
        self.name = gguf.string("general.name") ?? architecture
        self.layerCount = try required("block_count", limit: Int(UInt32.max))
        self.embeddingLength = try required("embedding_length", limit: Int(UInt32.max))
        self.feedForwardLength = try required("feed_forward_length", limit: Limits.feedForwardLength)
        self.headCount = try required("attention.head_count", limit: Limits.headCount)
        if let values = gguf.integers("\(architecture).attention.head_count_kv") {
            for value in values where !(0...Limits.headCount).contains(value) {
                throw LanguageModelError(.missingMetadata, "'\(architecture).attention.head_count_kv' holds \(value), outside 0...\(Limits.headCount)")
            }
        }
        self.keyValueHeadCount = try optional("attention.head_count_kv", limit: Limits.headCount)
            ?? gguf.integers("\(architecture).attention.head_count_kv")?.max() ?? headCount
        let defaultHeadLength = max(1, embeddingLength / headCount)
        self.keyLength = try optional("attention.key_length", limit: Limits.headLength) ?? defaultHeadLength
        self.valueLength = try optional("attention.value_length", limit: Limits.headLength) ?? defaultHeadLength
        self.ropeDimensionCount = try gguf.integer("\(architecture).rope.dimension_count").map { value throws(LanguageModelError) in
            try limited("rope.dimension_count", value, 0...Limits.headLength)
        } ?? keyLength
        self.ropeFrequencyBase = try finite("rope.freq_base", gguf.float("\(architecture).rope.freq_base")) ?? 10_000
        self.normEpsilon = try finite("attention.layer_norm_rms_epsilon", gguf.float("\(architecture).attention.layer_norm_rms_epsilon")) ?? 1e-5
        self.trainedContextLength = try optional("context_length", limit: Limits.contextLength) ?? 2048
        // A window of 0 is how some converters write "no sliding window".
        self.slidingWindow = gguf.integer("\(architecture).attention.sliding_window") == 0 ? nil
            : try optional("attention.sliding_window", limit: Limits.contextLength)
        self.ropeScaling = try RopeScaling(gguf: gguf, architecture: architecture, trainedContextLength: trainedContextLength)
        let temperature = try finite("attention.temperature_scale", gguf.float("\(architecture).attention.temperature_scale")) ?? 0
        self.attentionTemperatureScale = temperature != 0 ? temperature : nil
        let tokenCount: Int?
        if let tokens = gguf.metadata["tokenizer.ggml.tokens"], case .array(let array) = tokens {
            tokenCount = array.count
        } else {
            tokenCount = nil
        }
        if let size = gguf.integer("\(architecture).vocab_size") {
            self.vocabularySize = try limited("vocab_size", size, 1...Int(UInt32.max))
        } else if let tokenCount, tokenCount > 0 {
            self.vocabularySize = tokenCount
        } else {
            throw LanguageModelError(.missingMetadata, "model file has neither \(architecture).vocab_size nor tokenizer.ggml.tokens")
        }
        guard ropeFrequencyBase > 0, normEpsilon >= 0 else {
            throw LanguageModelError(.missingMetadata,
                "'\(architecture).rope.freq_base' (\(ropeFrequencyBase)) must be positive and 'attention.layer_norm_rms_epsilon' (\(normEpsilon)) not negative")
        }
        guard keyValueHeadCount > 0, headCount % keyValueHeadCount == 0 else {
            throw LanguageModelError(.missingMetadata,
                "attention.head_count (\(headCount)) is not a multiple of head_count_kv (\(keyValueHeadCount))")
        }
        guard ropeDimensionCount <= keyLength, ropeDimensionCount % 2 == 0 else {
            throw LanguageModelError(.missingMetadata, "rope.dimension_count \(ropeDimensionCount) does not fit key length \(keyLength)")
        }
        try checkAgainstTensors(gguf, tokenCount: tokenCount)
    }

    /// Checks the counts every architecture shares against the tensors the file holds: the
    /// embedding table's shape, the numbered blocks, the tokenizer's token count and — for the
    /// architectures that run the shared forward pass — the first block's attention and
    /// feed-forward rows. Nothing is sized from the metadata before this passes.
    private func checkAgainstTensors(_ gguf: GGUFFile, tokenCount: Int?) throws(LanguageModelError) {
        let a = architecture
        guard let embeddings = gguf.tensor(named: "token_embd.weight") else {
            throw LanguageModelError(.missingTensor, "model file has no tensor 'token_embd.weight'")
        }
        guard embeddings.dimensions.count == 2 else {
            throw LanguageModelError(.tensorShape, "tensor 'token_embd.weight' has shape \(embeddings.dimensions), expected 2 dimensions")
        }
        guard embeddings.dimensions[0] == embeddingLength else {
            throw LanguageModelError(.missingMetadata,
                "'\(a).embedding_length' is \(embeddingLength) but tensor 'token_embd.weight' has rows of \(embeddings.dimensions[0])")
        }
        guard embeddings.dimensions[1] == vocabularySize else {
            throw LanguageModelError(.missingMetadata,
                "the vocabulary ('\(a).vocab_size' or tokenizer.ggml.tokens) is \(vocabularySize) but tensor 'token_embd.weight' has \(embeddings.dimensions[1]) rows")
        }
        guard embeddingLength <= Limits.embeddingLength, vocabularySize <= Limits.vocabularySize else {
            throw LanguageModelError(.missingMetadata,
                "an embedding length of \(embeddingLength) or a vocabulary of \(vocabularySize) is beyond Ember's limits (\(Limits.embeddingLength), \(Limits.vocabularySize))")
        }
        if let tokenCount, tokenCount > vocabularySize {
            throw LanguageModelError(.missingMetadata,
                "tokenizer.ggml.tokens has \(tokenCount) tokens but the model has \(vocabularySize) embedding rows")
        }
        // Blocks are the tensors named blk.<number>.…; block_count must be exactly how many there are.
        var blocks = Set<Int>()
        for tensor in gguf.tensors where tensor.name.hasPrefix("blk.") {
            if let number = Int(tensor.name.dropFirst(4).prefix { $0 != "." }) { blocks.insert(number) }
        }
        guard blocks.count == layerCount, blocks.allSatisfy({ (0..<layerCount).contains($0) }) else {
            let present = blocks.isEmpty ? "no blk.* tensors" : "tensors for \(blocks.count) blocks (blk.\(blocks.min()!) … blk.\(blocks.max()!))"
            throw LanguageModelError(.missingMetadata, "'\(a).block_count' is \(layerCount) but the file has \(present)")
        }
        guard layerCount <= Limits.layerCount else {
            throw LanguageModelError(.missingMetadata, "'\(a).block_count' is \(layerCount), beyond Ember's limit of \(Limits.layerCount)")
        }
        // Architectures with their own forward pass vary head shapes per layer and check them themselves.
        guard let definition = ArchitectureRegistry.definition(for: a), !(definition is any CustomForwardArchitecture.Type) else { return }
        func rows(_ name: String) -> Int? {
            gguf.tensor(named: name).flatMap { $0.dimensions.count == 2 ? $0.dimensions[1] : nil }
        }
        func expect(_ name: String, _ actual: Int?, _ expected: Int, _ says: String) throws(LanguageModelError) {
            guard let actual, actual != expected else { return }
            throw LanguageModelError(.missingMetadata, "\(says) = \(expected) rows, but tensor '\(name)' has \(actual)")
        }
        let heads = "'\(a).attention.head_count' \(headCount) × key length \(keyLength)"
        let keyValueHeads = "'\(a).attention.head_count_kv' \(keyValueHeadCount)"
        if let fused = rows("blk.0.attn_qkv.weight") {
            try expect("blk.0.attn_qkv.weight", fused, headCount * keyLength + keyValueHeadCount * (keyLength + valueLength),
                       "\(heads) + 2 × \(keyValueHeads) heads")
        } else {
            try expect("blk.0.attn_q.weight", rows("blk.0.attn_q.weight"), headCount * keyLength, heads)
            try expect("blk.0.attn_k.weight", rows("blk.0.attn_k.weight"), keyValueHeadCount * keyLength, "\(keyValueHeads) × key length \(keyLength)")
            try expect("blk.0.attn_v.weight", rows("blk.0.attn_v.weight"), keyValueHeadCount * valueLength, "\(keyValueHeads) × value length \(valueLength)")
        }
        let feedForward = "'\(a).feed_forward_length' \(feedForwardLength)"
        if let gate = rows("blk.0.ffn_gate.weight") {
            try expect("blk.0.ffn_gate.weight", gate, feedForwardLength, feedForward)
        } else if let up = rows("blk.0.ffn_up.weight") {
            // A fused gate and up projection (phi3) has twice the rows.
            try expect("blk.0.ffn_up.weight", up, 2 * feedForwardLength, "2 × \(feedForward)")
        }
    }
}

/// How a model stretches its rotary embedding beyond the context it was trained on, as the
/// `<architecture>.rope.scaling.*` keys say and as llama.cpp applies them.
///
/// Angles are divided by `1 / frequencyScale` (linear interpolation). YaRN blends interpolated
/// and original angles per dimension between the correction dimensions set by β fast and β slow,
/// and scales cosines and sines by a magnitude factor; LongRoPE divides angles by per-dimension
/// factors stored as tensors (the architecture reads those) and scales by `attentionFactor`.
public struct RopeScaling: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case none, linear, yarn, longrope
    }

    public var kind: Kind
    /// 1 / `rope.scaling.factor`; 1 when there is no factor or the kind is `none`.
    public var frequencyScale: Float
    /// The context the rotary angles were trained for (`rope.scaling.original_context_length`).
    public var originalContextLength: Int
    /// `rope.scaling.attn_factor`: multiplies cosines and sines (LongRoPE's magnitude scale).
    public var attentionFactor: Float
    /// YaRN's blend between interpolated and original angles (1 for YaRN, else 0).
    public var extrapolationFactor: Float
    public var betaFast: Float
    public var betaSlow: Float
    /// `rope.scaling.yarn_log_multiplier` (mscale_all_dims); 0 when absent.
    public var yarnLogMultiplier: Float

    public static let none = RopeScaling(kind: .none, frequencyScale: 1, originalContextLength: 0, attentionFactor: 1,
                                         extrapolationFactor: 0, betaFast: 32, betaSlow: 1, yarnLogMultiplier: 0)

    public init(kind: Kind, frequencyScale: Float, originalContextLength: Int, attentionFactor: Float,
                extrapolationFactor: Float, betaFast: Float, betaSlow: Float, yarnLogMultiplier: Float) {
        self.kind = kind
        self.frequencyScale = frequencyScale
        self.originalContextLength = originalContextLength
        self.attentionFactor = attentionFactor
        self.extrapolationFactor = extrapolationFactor
        self.betaFast = betaFast
        self.betaSlow = betaSlow
        self.yarnLogMultiplier = yarnLogMultiplier
    }

    init(gguf: GGUFFile, architecture: String, trainedContextLength: Int) throws(LanguageModelError) {
        let prefix = "\(architecture).rope.scaling."
        let name = gguf.string(prefix + "type") ?? "linear"
        guard let kind = Kind(rawValue: name) else {
            throw LanguageModelError(.missingMetadata, "\(prefix)type '\(name)' is not supported (none, linear, yarn, longrope)")
        }
        self.kind = kind
        let factor = gguf.float(prefix + "factor") ?? gguf.float("\(architecture).rope.scale_linear") ?? 0
        guard factor >= 0, factor.isFinite else {
            throw LanguageModelError(.missingMetadata, "\(prefix)factor \(factor) is not a positive number")
        }
        frequencyScale = (kind == .none || factor == 0) ? 1 : 1 / factor
        originalContextLength = gguf.integer(prefix + "original_context_length") ?? trainedContextLength
        guard (1...ModelConfiguration.Limits.contextLength).contains(originalContextLength) else {
            throw LanguageModelError(.missingMetadata,
                "\(prefix)original_context_length is \(originalContextLength), outside 1...\(ModelConfiguration.Limits.contextLength)")
        }
        attentionFactor = gguf.float(prefix + "attn_factor") ?? 1
        extrapolationFactor = gguf.float(prefix + "yarn_ext_factor").flatMap { $0 >= 0 ? $0 : nil } ?? (kind == .yarn ? 1 : 0)
        betaFast = gguf.float(prefix + "yarn_beta_fast") ?? 32
        betaSlow = gguf.float(prefix + "yarn_beta_slow") ?? 1
        yarnLogMultiplier = gguf.float(prefix + "yarn_log_multiplier") ?? 0
        for (name, value) in [("attn_factor", attentionFactor), ("yarn_ext_factor", extrapolationFactor), ("yarn_beta_fast", betaFast),
                              ("yarn_beta_slow", betaSlow), ("yarn_log_multiplier", yarnLogMultiplier)] where !value.isFinite {
            throw LanguageModelError(.missingMetadata, "\(prefix)\(name) is \(value), not a finite number")
        }
    }

    /// The factor cosines and sines are multiplied by, as llama.cpp computes it: with YaRN,
    /// 0.1·ln(s)+1 for scale s (or its ratio to the log-multiplier form), times `attentionFactor`.
    public var magnitudeScale: Float {
        var scale: Float = 1
        if extrapolationFactor != 0 {
            let factor = 1 / frequencyScale
            func magnitude(_ multiplier: Float) -> Float { factor <= 1 ? 1 : 0.1 * multiplier * logf(factor) + 1 }
            // llama.cpp divides its context's factor by 0.1·ln(s)+1 and its rope kernel multiplies
            // it back; the product is this.
            scale = yarnLogMultiplier != 0 ? magnitude(1) / magnitude(yarnLogMultiplier) : magnitude(1)
        }
        return scale * attentionFactor
    }
}

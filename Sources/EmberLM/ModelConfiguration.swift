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

    /// Reads the configuration of `gguf`, whose `general.architecture` names the key prefix.
    public init(gguf: GGUFFile) throws(LanguageModelError) {
        guard let architecture = gguf.string("general.architecture") else {
            throw LanguageModelError(.missingMetadata, "model file has no general.architecture")
        }
        func required(_ suffix: String) throws(LanguageModelError) -> Int {
            let key = "\(architecture).\(suffix)"
            // Per-layer arrays (Gemma 4's feed-forward lengths) give their largest value.
            guard let value = gguf.integer(key) ?? gguf.integers(key)?.max(), value > 0 else {
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
        self.keyValueHeadCount = gguf.integer("\(architecture).attention.head_count_kv")
            ?? gguf.integers("\(architecture).attention.head_count_kv")?.max() ?? headCount
        let defaultHeadLength = embeddingLength / headCount
        self.keyLength = gguf.integer("\(architecture).attention.key_length") ?? defaultHeadLength
        self.valueLength = gguf.integer("\(architecture).attention.value_length") ?? defaultHeadLength
        self.ropeDimensionCount = gguf.integer("\(architecture).rope.dimension_count") ?? keyLength
        self.ropeFrequencyBase = gguf.float("\(architecture).rope.freq_base") ?? 10_000
        self.normEpsilon = gguf.float("\(architecture).attention.layer_norm_rms_epsilon") ?? 1e-5
        self.trainedContextLength = gguf.integer("\(architecture).context_length") ?? 2048
        self.slidingWindow = gguf.integer("\(architecture).attention.sliding_window")
        self.ropeScaling = try RopeScaling(gguf: gguf, architecture: architecture, trainedContextLength: trainedContextLength)
        let temperature = gguf.float("\(architecture).attention.temperature_scale") ?? 0
        self.attentionTemperatureScale = temperature != 0 ? temperature : nil
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
        attentionFactor = gguf.float(prefix + "attn_factor") ?? 1
        extrapolationFactor = gguf.float(prefix + "yarn_ext_factor").flatMap { $0 >= 0 ? $0 : nil } ?? (kind == .yarn ? 1 : 0)
        betaFast = gguf.float(prefix + "yarn_beta_fast") ?? 32
        betaSlow = gguf.float(prefix + "yarn_beta_slow") ?? 1
        yarnLogMultiplier = gguf.float(prefix + "yarn_log_multiplier") ?? 0
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

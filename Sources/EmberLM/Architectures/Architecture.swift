import EmberGGUF

/// How one architecture departs from the plain llama transformer that `TransformerModel` runs.
///
/// Each architecture file (`Llama.swift`, …) builds these traits from the configuration and the
/// file; everything else — weights, kernels, KV cache, attention — is shared.
public struct ArchitectureTraits: Sendable {
    public enum FeedForwardActivation: Sendable, Equatable {
        /// `silu(gate) * up` (llama).
        case swiGLU
        /// `gelu_tanh(gate) * up` (gemma).
        case geGLU
    }

    /// Attention settings of one layer.
    public struct LayerAttention: Sendable, Equatable {
        /// Only the last `window` positions are visible; nil for full causal attention.
        public var slidingWindow: Int?
        public var ropeFrequencyBase: Float

        public init(slidingWindow: Int?, ropeFrequencyBase: Float) {
            self.slidingWindow = slidingWindow
            self.ropeFrequencyBase = ropeFrequencyBase
        }
    }

    public var activation: FeedForwardActivation
    public var rotaryLayout: RotaryLayout
    /// Multiplies the token embeddings before the first layer (gemma: √embedding length).
    public var embeddingScale: Float?
    /// Per-head RMS norms of queries and keys (`attn_q_norm`, `attn_k_norm`).
    public var hasQueryKeyNorms: Bool
    /// Norms after attention and after the feed-forward block (`post_attention_norm`, `post_ffw_norm`).
    public var hasPostNorms: Bool
    /// Multiplies query·key before the softmax.
    public var attentionScale: Float
    /// Multiplies the queries after RoPE, before their rounding to half precision, where llama.cpp's
    /// graph scales them (`ggml_scale` on Q, then attention with scale 1: phi3, gemma3); the
    /// product rounds differently from scaling query·key. nil when the scale is `attentionScale`.
    public var queryScale: Float? = nil
    public var layers: [LayerAttention]
    /// Chat template family used when the file carries no `tokenizer.chat_template`.
    public var defaultChatTemplate: ChatTemplate.Family?
    /// Context extension of the rotary embedding (YaRN, linear, LongRoPE's magnitude).
    public var ropeScaling: RopeScaling = .none
    /// Per-dimension divisors of the rotary angles (`rope_freqs`, `rope_factors_short/long`).
    public var rotaryFrequencyFactors: RotaryFrequencyFactors?
    /// Attention temperature tuning: queries at position p are multiplied by
    /// 1 + scale · log(1 + ⌊p / floor⌋), with `floor` the original context length.
    public var attentionTemperature: (scale: Float, floor: Int)?
    /// A mixture-of-experts feed-forward block in every layer instead of the dense one (qwen3moe);
    /// nil for dense models. Set after `init` by the architectures that have one.
    public var mixtureOfExperts: MixtureOfExpertsTraits? = nil
    /// Logits become `cap · tanh(logit / cap)` (Gemma 2, 3n, 4); nil for none.
    public var finalLogitSoftcapping: Float? = nil

    public init(activation: FeedForwardActivation, rotaryLayout: RotaryLayout, embeddingScale: Float?,
                hasQueryKeyNorms: Bool, hasPostNorms: Bool, attentionScale: Float, layers: [LayerAttention],
                defaultChatTemplate: ChatTemplate.Family?) {
        self.activation = activation
        self.rotaryLayout = rotaryLayout
        self.embeddingScale = embeddingScale
        self.hasQueryKeyNorms = hasQueryKeyNorms
        self.hasPostNorms = hasPostNorms
        self.attentionScale = attentionScale
        self.layers = layers
        self.defaultChatTemplate = defaultChatTemplate
    }
}

/// Divisors of the rotary angles per dimension pair: one set, or LongRoPE's pair chosen by the
/// session's context (the long set beyond `originalContextLength`, as llama.cpp chooses).
public struct RotaryFrequencyFactors: Sendable, Equatable {
    public var short: [Float]
    public var long: [Float]?
    public var originalContextLength: Int

    public init(short: [Float], long: [Float]?, originalContextLength: Int) {
        self.short = short
        self.long = long
        self.originalContextLength = originalContextLength
    }

    /// The factors a session of `contextLength` positions uses.
    public func factors(contextLength: Int) -> [Float] {
        if let long, contextLength > originalContextLength { return long }
        return short
    }

    /// Reads `names` (the first present) from `gguf`; nil when none is.
    static func read(_ gguf: GGUFFile, _ name: String, pairs: Int) throws(LanguageModelError) -> [Float]? {
        guard let tensor = gguf.tensor(named: name) else { return nil }
        guard tensor.type == .f32, tensor.elementCount == pairs else {
            throw LanguageModelError(.tensorShape, "tensor '\(name)' must hold \(pairs) F32 values (rope dimensions / 2), has \(tensor.elementCount) of \(tensor.type)")
        }
        let pointer = gguf.tensorData(tensor).assumingMemoryBound(to: Float.self)
        return Array(UnsafeBufferPointer(start: pointer, count: pairs))
    }
}

/// An architecture Ember can run, registered under its `general.architecture` name.
public protocol ArchitectureDefinition: Sendable {
    /// The `general.architecture` values this definition runs.
    static var names: [String] { get }
    static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits
}

/// An architecture that loads its own layer weights and runs its own forward pass; the model
/// still loads the token embeddings, the output norm and the output projection, and the session
/// still owns the KV cache, the logits and the thread pool.
protocol CustomForwardArchitecture: ArchitectureDefinition {
    /// The layers' weights (and any model-level weights besides embeddings and output).
    static func loadLayers(configuration: ModelConfiguration, traits: ArchitectureTraits, file: GGUFFile,
                           loader: WeightLoader) throws(LanguageModelError) -> any CustomLayerWeights

    /// The KV cache the forward pass needs.
    static func keyValueCacheShape(configuration: ModelConfiguration, file: GGUFFile) throws(LanguageModelError) -> KeyValueCacheShape

    /// The forward pass's own buffers for batches of `batchSize` rows and the widest attention it
    /// runs; nil when the file's hyperparameters do not load (the model then fails to load too).
    static func scratch(configuration: ModelConfiguration, file: GGUFFile, batchSize: Int) -> CustomForwardScratch?
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
    /// One session's forward pass: buffers for `batchSize` rows, written with the session's `blocks`.
    func makeForwardPass(model: TransformerModel, blocks: ForwardBlocks, batchSize: Int) -> any CustomForwardPass
}

/// One session's forward pass of a `CustomForwardArchitecture`.
protocol CustomForwardPass: AnyObject {
    /// Runs `tokens`, each at the cache and position `placement` gives it (consecutive positions of
    /// one sequence, or one row of each of several sequences), writes their keys and values there
    /// (without advancing the caches) and leaves the final-normed hidden states, one row of
    /// embedding length per token, in `output`.
    func forward(_ tokens: UnsafeBufferPointer<Int32>, placement: RowPlacement, output: UnsafeMutablePointer<Float>)
}

/// The architectures Ember runs, by `general.architecture`.
public enum ArchitectureRegistry {
    public static let definitions: [any ArchitectureDefinition.Type] = [
        LlamaArchitecture.self, Gemma3Architecture.self, Qwen3Architecture.self, Phi3Architecture.self,
        Mistral3Architecture.self, Qwen3MoEArchitecture.self, Gemma4Architecture.self, Gemma3nArchitecture.self,
    ]

    public static func definition(for name: String) -> (any ArchitectureDefinition.Type)? {
        definitions.first { $0.names.contains(name) }
    }

    public static var supportedNames: [String] { definitions.flatMap { $0.names } }
}

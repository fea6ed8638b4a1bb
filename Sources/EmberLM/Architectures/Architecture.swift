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
    public var layers: [LayerAttention]
    /// Chat template family used when the file carries no `tokenizer.chat_template`.
    public var defaultChatTemplate: ChatTemplate.Family?

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

/// An architecture Ember can run, registered under its `general.architecture` name.
public protocol ArchitectureDefinition: Sendable {
    /// The `general.architecture` values this definition runs.
    static var names: [String] { get }
    static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits
}

/// The architectures Ember runs, by `general.architecture`.
public enum ArchitectureRegistry {
    public static let definitions: [any ArchitectureDefinition.Type] = [
        LlamaArchitecture.self, Gemma3Architecture.self, Qwen3Architecture.self,
    ]

    public static func definition(for name: String) -> (any ArchitectureDefinition.Type)? {
        definitions.first { $0.names.contains(name) }
    }

    public static var supportedNames: [String] { definitions.flatMap { $0.names } }
}

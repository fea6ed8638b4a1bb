import EmberGGUF

/// Qwen3 (dense; Qwen3-0.6B … 32B, Qwen3-4B on phones): the llama block with per-head RMS norms
/// of queries and keys before RoPE, RoPE on split halves (NeoX), and a head length that need not
/// be embedding ÷ heads (`attention.key_length`).
public enum Qwen3Architecture: ArchitectureDefinition {
    public static let names = ["qwen3"]

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        let layer = ArchitectureTraits.LayerAttention(slidingWindow: nil, ropeFrequencyBase: configuration.ropeFrequencyBase)
        var traits = ArchitectureTraits(
            activation: .swiGLU,
            rotaryLayout: .splitHalves,
            embeddingScale: nil,
            hasQueryKeyNorms: true,
            hasPostNorms: false,
            attentionScale: 1 / Float(configuration.keyLength).squareRoot(),
            layers: Array(repeating: layer, count: configuration.layerCount),
            defaultChatTemplate: .chatML)
        traits.ropeScaling = configuration.ropeScaling  // YaRN when a long-context file asks for it
        return traits
    }
}

import EmberGGUF

/// The llama architecture (SmolLM2, Llama 2/3, Mistral-class): RMSNorm, RoPE on adjacent pairs,
/// grouped-query attention, SwiGLU feed-forward, output optionally tied to the embeddings; linear
/// or YaRN RoPE scaling and Llama 3's `rope_freqs` when the file has them.
public enum LlamaArchitecture: ArchitectureDefinition {
    public static let names = ["llama", "mistral"]

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        let layer = ArchitectureTraits.LayerAttention(slidingWindow: nil, ropeFrequencyBase: configuration.ropeFrequencyBase)
        var traits = ArchitectureTraits(
            activation: .swiGLU,
            rotaryLayout: .adjacentPairs,
            embeddingScale: nil,
            hasQueryKeyNorms: false,
            hasPostNorms: false,
            attentionScale: 1 / Float(configuration.keyLength).squareRoot(),
            layers: Array(repeating: layer, count: configuration.layerCount),
            defaultChatTemplate: .chatML)
        traits.ropeScaling = configuration.ropeScaling
        if let factors = try RotaryFrequencyFactors.read(gguf, "rope_freqs.weight", pairs: configuration.ropeDimensionCount / 2) {
            traits.rotaryFrequencyFactors = RotaryFrequencyFactors(short: factors, long: nil, originalContextLength: 0)
        }
        return traits
    }
}

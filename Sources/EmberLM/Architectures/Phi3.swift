import EmberGGUF

/// Phi-3 and Phi-4-mini as llama.cpp runs them: the llama block with one fused query-key-value
/// projection (`attn_qkv`) and one fused gate-and-up projection (`ffn_up`, gate rows first), RoPE
/// on split halves over the first `rope.dimension_count` dimensions of each head only (Phi-4-mini
/// rotates 96 of 128), and LongRoPE: per-dimension angle divisors (`rope_factors_short` up to the
/// original context, `rope_factors_long` beyond) with a magnitude factor (`rope.scaling.attn_factor`).
///
/// The fused tensors are split into row ranges when the model loads (`TransformerModel`), so the
/// forward pass is the shared one. llama.cpp ignores phi3's sliding window (it disabled it), and so
/// does Ember, to give the same logits.
public enum Phi3Architecture: ArchitectureDefinition {
    public static let names = ["phi3"]

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        let layer = ArchitectureTraits.LayerAttention(slidingWindow: nil, ropeFrequencyBase: configuration.ropeFrequencyBase)
        var traits = ArchitectureTraits(
            activation: .swiGLU,
            rotaryLayout: .splitHalves,
            embeddingScale: nil,
            hasQueryKeyNorms: false,
            hasPostNorms: false,
            attentionScale: 1,
            layers: Array(repeating: layer, count: configuration.layerCount),
            defaultChatTemplate: .chatML)
        // llama.cpp's phi3 graph scales the queries (after RoPE) rather than query·key.
        traits.queryScale = 1 / Float(configuration.keyLength).squareRoot()
        traits.ropeScaling = configuration.ropeScaling
        let pairs = configuration.ropeDimensionCount / 2
        if let short = try RotaryFrequencyFactors.read(gguf, "rope_factors_short.weight", pairs: pairs) {
            traits.rotaryFrequencyFactors = RotaryFrequencyFactors(
                short: short, long: try RotaryFrequencyFactors.read(gguf, "rope_factors_long.weight", pairs: pairs),
                originalContextLength: configuration.ropeScaling.originalContextLength)
        }
        return traits
    }
}

import EmberGGUF

/// Gemma 3 as llama.cpp runs it: embeddings scaled by √d, RoPE on split halves, per-head query
/// and key RMS norms, norms before and after both attention and the feed-forward block, GeGLU,
/// and sliding-window attention on local layers.
///
/// Not everything is in the file: llama.cpp hard-codes the layer pattern (every sixth layer is
/// global, the rest use the `attention.sliding_window`) and the local RoPE base of 10,000 (global
/// layers use `rope.freq_base`, 1,000,000 for Gemma 3). The norm weights in GGUF already include
/// Gemma's `1 +` offset (the converter adds it), so they are plain RMSNorm weights here.
public enum Gemma3Architecture: ArchitectureDefinition {
    public static let names = ["gemma3"]

    /// Every `globalLayerPeriod`-th layer attends to the whole context.
    static let globalLayerPeriod = 6
    static let localRopeFrequencyBase: Float = 10_000

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        guard let window = configuration.slidingWindow else {
            throw LanguageModelError(.missingMetadata, "gemma3 model file is missing 'gemma3.attention.sliding_window'")
        }
        let layers = (0..<configuration.layerCount).map { index in
            let isGlobal = (index + 1) % globalLayerPeriod == 0
            return ArchitectureTraits.LayerAttention(
                slidingWindow: isGlobal ? nil : window,
                ropeFrequencyBase: isGlobal ? configuration.ropeFrequencyBase : localRopeFrequencyBase)
        }
        var traits = ArchitectureTraits(
            activation: .geGLU,
            rotaryLayout: .splitHalves,
            embeddingScale: Float(configuration.embeddingLength).squareRoot(),
            hasQueryKeyNorms: true,
            hasPostNorms: true,
            attentionScale: 1,
            layers: layers,
            defaultChatTemplate: .gemma)
        // llama.cpp's gemma3 graph scales the queries (after RoPE) rather than query·key.
        traits.queryScale = 1 / Float(configuration.keyLength).squareRoot()
        return traits
    }
}

import EmberGGUF

/// Ministral 3 (`mistral3`) as llama.cpp runs it: the llama block (RoPE on adjacent pairs, GQA,
/// SwiGLU) with YaRN context extension and Llama-4-style attention temperature tuning: queries
/// at position p are multiplied by 1 + t · log(1 + ⌊p / original context⌋), t being
/// `attention.temperature_scale`. Optional `rope_freqs` divide the rotary angles per dimension.
/// Its mixture-of-experts variant (Mistral Large 3) replaces every feed-forward with routed SwiGLU
/// experts: softmax gating, the top `expert_used_count` renormalized, each expert as wide as
/// `feed_forward_length` (llama.cpp reads no expert width or weight scale for mistral3).
public enum Mistral3Architecture: ArchitectureDefinition {
    public static let names = ["mistral3"]

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        var traits = try LlamaArchitecture.traits(configuration: configuration, gguf: gguf)
        if gguf.tensor(named: "blk.0.ffn_gate_inp.weight") != nil {
            var experts = try MixtureOfExpertsTraits.read(configuration: configuration, gguf: gguf, normalizesWeights: true)
            experts.expertFeedForwardLength = configuration.feedForwardLength
            traits.mixtureOfExperts = experts
        }
        if let scale = configuration.attentionTemperatureScale {
            let floor = configuration.ropeScaling.originalContextLength
            guard floor > 0 else {
                throw LanguageModelError(.missingMetadata, "mistral3 attention temperature needs rope.scaling.original_context_length")
            }
            traits.attentionTemperature = (scale, floor)
        }
        return traits
    }
}

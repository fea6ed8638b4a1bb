import EmberGGUF

/// Ministral 3 (`mistral3`) as llama.cpp runs it: the llama block (RoPE on adjacent pairs, GQA,
/// SwiGLU) with YaRN context extension and Llama-4-style attention temperature tuning: queries
/// at position p are multiplied by 1 + t · log(1 + ⌊p / original context⌋), t being
/// `attention.temperature_scale`. Optional `rope_freqs` divide the rotary angles per dimension.
/// (Its mixture-of-experts variant, Mistral Large 3, is not run here.)
public enum Mistral3Architecture: ArchitectureDefinition {
    public static let names = ["mistral3"]

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        if gguf.tensor(named: "blk.0.ffn_gate_inp.weight") != nil {
            throw LanguageModelError(.unsupportedArchitecture, "mistral3 with experts (Mistral Large 3) is not supported yet")
        }
        var traits = try LlamaArchitecture.traits(configuration: configuration, gguf: gguf)
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

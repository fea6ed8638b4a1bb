import EmberGGUF

/// Qwen3 mixture of experts (Qwen3-30B-A3B, Qwen3-235B-A22B): qwen3's attention (per-head RMS
/// norms of queries and keys before NeoX RoPE, a head length of its own) with every block's
/// feed-forward replaced by a mixture of experts — a softmax router over `expert_count` experts,
/// the top `expert_used_count` run, their weights always renormalized to sum to one (llama.cpp
/// passes `norm_w = true` for this architecture whatever the file says) and no shared expert.
public enum Qwen3MoEArchitecture: ArchitectureDefinition {
    public static let names = ["qwen3moe"]

    public static func traits(configuration: ModelConfiguration, gguf: GGUFFile) throws(LanguageModelError) -> ArchitectureTraits {
        var traits = try Qwen3Architecture.traits(configuration: configuration, gguf: gguf)
        // llama.cpp's qwen3moe reads no expert_weights_scale, so its default (none) applies.
        traits.mixtureOfExperts = try MixtureOfExpertsTraits.read(configuration: configuration, gguf: gguf, gating: .softmax,
                                                                  normalizesWeights: true, weightScale: nil)
        return traits
    }
}

import EmberDevice
import EmberGGUF
import EmberLM

extension ModelWorkload {
    /// The workload of a GGUF model, from its tensors: every matrix's real bytes at its real
    /// quantization type, the embedding table counted as one row (or whole, when it doubles as the
    /// output projection), routed experts at the fraction a token uses, and every byte of the file's
    /// tensors as the resident size.
    public init(gguf: GGUFFile, name: String? = nil) throws {
        let configuration = try ModelConfiguration(gguf: gguf)
        let architecture = configuration.architecture
        let expertCount = gguf.integer("\(architecture).expert_count") ?? 0
        let expertsUsed = gguf.integer("\(architecture).expert_used_count") ?? 0
        let fraction = expertCount > 0 ? Double(expertsUsed) / Double(expertCount) : 1
        var bytes = 0.0, parameters = 0.0, total = 0.0, expertBytes = 0.0
        let hasOutput = gguf.tensor(named: "output.weight") != nil
        for tensor in gguf.tensors {
            total += Double(tensor.byteCount)
            guard tensor.dimensions.count >= 2 else { continue }
            if tensor.name == "token_embd.weight" {
                let row = Double(tensor.byteCount) / Double(max(1, tensor.rowCount))
                bytes += hasOutput ? row : Double(tensor.byteCount) + row
                parameters += Double(hasOutput ? tensor.rowLength : tensor.elementCount)
            } else if tensor.name.hasSuffix("_exps.weight") {
                expertBytes += Double(tensor.byteCount)
                bytes += Double(tensor.byteCount) * fraction
                parameters += Double(tensor.elementCount) * fraction
            } else if tensor.name.hasPrefix("per_layer_token_embd") {
                // Per-layer embeddings are looked up by row, like the token embeddings.
                bytes += Double(tensor.byteCount) / Double(max(1, tensor.rowCount))
            } else {
                bytes += Double(tensor.byteCount)
                parameters += Double(tensor.elementCount)
            }
        }
        let layers = Double(configuration.layerCount)
        let headLengths = Double(configuration.keyLength + configuration.valueLength)
        self.init(
            name: name ?? configuration.name,
            parameterCount: parameters,
            weightBytesPerToken: bytes,
            matmulFlopsPerToken: 2 * parameters,
            attentionFlopsPerPosition: 2 * layers * Double(configuration.headCount) * headLengths,
            keyValueBytesPerToken: 2 * layers * Double(configuration.keyValueHeadCount) * headLengths)
        totalWeightBytes = total
        layerCount = configuration.layerCount
        if expertCount > 0 {
            expertWeightBytes = expertBytes
            expertsUsedFraction = fraction
        }
    }

    /// Bits per weight of each quantization type, scales included (a model's mix of types for the
    /// K-quant "_M" recipes), as llama.cpp's quantize reports them for 7B-class models.
    public static let bitsPerWeight: [String: Double] = [
        "q4_0": 4.5, "q4_1": 5.0, "q5_0": 5.5, "q8_0": 8.5, "f16": 16,
        "q4_k_m": 4.85, "q5_k_m": 5.7, "q6_k": 6.56,
    ]

    /// The families of the seed models with their published sizes; the catalog holds each at every
    /// quantization type of `bitsPerWeight` as `<family>-<quant>` (e.g. `gemma4-e4b-q4_k_m`).
    /// Sources: the model cards and config.json files (layers, hidden and head sizes, parameter
    /// counts); llama.cpp's loaders for layer counts (gemma4: 35 = E2B, 42 = E4B, 30 = 26B-A4B,
    /// 60 = 31B; qwen3moe: 48 = 30B-A3B). Gemma 3n/4 "E" models keep per-layer embeddings
    /// (the difference between total and effective parameters) out of the per-token work.
    public static let families: [String: @Sendable (Double) -> ModelWorkload] = [
        "smollm2-135m": { .transformer(name: "smollm2-135m", layers: 30, embeddingLength: 576, feedForwardLength: 1536,
                                       heads: 9, keyValueHeads: 3, headLength: 64, vocabularySize: 49152, bitsPerWeight: $0) },
        "gemma3-270m": { .transformer(name: "gemma3-270m", layers: 18, embeddingLength: 640, feedForwardLength: 2048,
                                      heads: 4, keyValueHeads: 1, headLength: 256, vocabularySize: 262_144, bitsPerWeight: $0) },
        "gemma3n-e2b": { .published(name: "gemma3n-e2b", activeParameters: 1.91e9, totalParameters: 5.44e9, layers: 30,
                                    heads: 8, keyValueHeads: 2, headLength: 256, keyValueLayers: 20, bitsPerWeight: $0) },
        "gemma3n-e4b": { .published(name: "gemma3n-e4b", activeParameters: 3.87e9, totalParameters: 7.85e9, layers: 35,
                                    heads: 8, keyValueHeads: 2, headLength: 256, keyValueLayers: 20, bitsPerWeight: $0) },
        "gemma4-e2b": { .published(name: "gemma4-e2b", activeParameters: 2.3e9, totalParameters: 5.1e9, layers: 35,
                                   heads: 8, keyValueHeads: 1, headLength: 256, keyValueLayers: 15, bitsPerWeight: $0) },
        "gemma4-e4b": { .published(name: "gemma4-e4b", activeParameters: 4.5e9, totalParameters: 8.0e9, layers: 42,
                                   heads: 8, keyValueHeads: 2, headLength: 256, keyValueLayers: 24, bitsPerWeight: $0) },
        "gemma4-26b-a4b": { .published(name: "gemma4-26b-a4b", activeParameters: 3.8e9, totalParameters: 25.2e9, layers: 30,
                                       heads: 16, keyValueHeads: 8, headLength: 256, expertParameters: 23.0e9,
                                       expertsUsedFraction: 8.0 / 128, bitsPerWeight: $0) },
        "gemma4-31b": { .published(name: "gemma4-31b", activeParameters: 30.7e9, totalParameters: 30.7e9, layers: 60,
                                   heads: 32, keyValueHeads: 16, headLength: 256, bitsPerWeight: $0) },
        "phi4-mini": { .transformer(name: "phi4-mini", layers: 32, embeddingLength: 3072, feedForwardLength: 8192,
                                    heads: 24, keyValueHeads: 8, headLength: 128, vocabularySize: 200_064, bitsPerWeight: $0) },
        "qwen3-4b": { .transformer(name: "qwen3-4b", layers: 36, embeddingLength: 2560, feedForwardLength: 9728,
                                   heads: 32, keyValueHeads: 8, headLength: 128, vocabularySize: 151_936, bitsPerWeight: $0) },
        "qwen3-30b-a3b": { .published(name: "qwen3-30b-a3b", activeParameters: 3.3e9, totalParameters: 30.5e9, layers: 48,
                                      heads: 32, keyValueHeads: 4, headLength: 128, expertParameters: 29.0e9,
                                      expertsUsedFraction: 8.0 / 128, bitsPerWeight: $0) },
        "ministral-8b": { .transformer(name: "ministral-8b", layers: 36, embeddingLength: 4096, feedForwardLength: 12288,
                                       heads: 32, keyValueHeads: 8, headLength: 128, vocabularySize: 131_072, bitsPerWeight: $0) },
        "mistral-small-3.1-24b": { .transformer(name: "mistral-small-3.1-24b", layers: 40, embeddingLength: 5120,
                                                feedForwardLength: 32768, heads: 32, keyValueHeads: 8, headLength: 128,
                                                vocabularySize: 131_072, bitsPerWeight: $0) },
        "qwen2.5-1.5b": { .transformer(name: "qwen2.5-1.5b", layers: 28, embeddingLength: 1536, feedForwardLength: 8960,
                                       heads: 12, keyValueHeads: 2, headLength: 128, vocabularySize: 151_936, bitsPerWeight: $0) },
        "llama-7b": { .transformer(name: "llama-7b", layers: 32, embeddingLength: 4096, feedForwardLength: 11008,
                                   heads: 32, keyValueHeads: 32, headLength: 128, vocabularySize: 32000, bitsPerWeight: $0) },
    ]

    /// Named workloads for models whose weights are not at hand (`--model-spec`): every family at
    /// every quantization type, plus LFM2 from its published size.
    public static let catalog: [String: ModelWorkload] = {
        var catalog: [String: ModelWorkload] = [:]
        for (family, make) in families {
            for (quantization, bits) in bitsPerWeight {
                var workload = make(bits)
                workload.name = "\(family)-\(quantization)"
                catalog[workload.name] = workload
            }
        }
        catalog["lfm2-1.2b-q4_0"] = ModelWorkload(name: "lfm2-1.2b-q4_0", parameterCount: 1.17e9, weightBytesPerToken: 0.66e9,
                                                  matmulFlopsPerToken: 2.34e9, attentionFlopsPerPosition: 6 * 4 * 32 * 64,
                                                  keyValueBytesPerToken: 2 * 6 * 8 * 64 * 2)
        return catalog
    }()
}

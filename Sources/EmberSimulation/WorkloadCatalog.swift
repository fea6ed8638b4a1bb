import EmberDevice
import EmberGGUF
import EmberLM

extension ModelWorkload {
    /// The workload of a GGUF model, from its tensors: every matrix's real bytes at its real
    /// quantization type, the embedding table counted as one row (or whole, when it doubles as the
    /// output projection).
    public init(gguf: GGUFFile, name: String? = nil) throws {
        let configuration = try ModelConfiguration(gguf: gguf)
        var bytes = 0.0, parameters = 0.0
        let hasOutput = gguf.tensor(named: "output.weight") != nil
        for tensor in gguf.tensors where tensor.dimensions.count >= 2 {
            if tensor.name == "token_embd.weight" {
                let row = Double(tensor.byteCount) / Double(max(1, tensor.rowCount))
                bytes += hasOutput ? row : Double(tensor.byteCount) + row
                parameters += Double(hasOutput ? tensor.rowLength : tensor.elementCount)
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
    }

    /// Named workloads for models whose weights are not at hand, from their published shapes
    /// (`--model-spec`). Bits per weight include quantization scales (Q4_K_M ≈ 4.85, Q4_0 ≈ 4.5,
    /// Q8_0 = 8.5).
    public static let catalog: [String: ModelWorkload] = [
        "smollm2-135m-q4_1": .transformer(name: "smollm2-135m-q4_1", layers: 30, embeddingLength: 576, feedForwardLength: 1536,
                                          heads: 9, keyValueHeads: 3, headLength: 64, vocabularySize: 49152, bitsPerWeight: 5.0),
        "gemma3-270m-q4_k_m": .transformer(name: "gemma3-270m-q4_k_m", layers: 18, embeddingLength: 640, feedForwardLength: 2048,
                                           heads: 4, keyValueHeads: 1, headLength: 256, vocabularySize: 262_144, bitsPerWeight: 6.0),
        "lfm2-1.2b-q4_0": ModelWorkload(name: "lfm2-1.2b-q4_0", parameterCount: 1.17e9, weightBytesPerToken: 0.66e9,
                                        matmulFlopsPerToken: 2.34e9, attentionFlopsPerPosition: 6 * 4 * 32 * 64,
                                        keyValueBytesPerToken: 2 * 6 * 8 * 64 * 2),
        "qwen2.5-1.5b-q4_k_m": .transformer(name: "qwen2.5-1.5b-q4_k_m", layers: 28, embeddingLength: 1536, feedForwardLength: 8960,
                                            heads: 12, keyValueHeads: 2, headLength: 128, vocabularySize: 151_936, bitsPerWeight: 4.85),
        "qwen3-4b-q4_k_m": .transformer(name: "qwen3-4b-q4_k_m", layers: 36, embeddingLength: 2560, feedForwardLength: 9728,
                                        heads: 32, keyValueHeads: 8, headLength: 128, vocabularySize: 151_936, bitsPerWeight: 4.85),
        "phi4-mini-q4_k_m": .transformer(name: "phi4-mini-q4_k_m", layers: 32, embeddingLength: 3072, feedForwardLength: 8192,
                                         heads: 24, keyValueHeads: 8, headLength: 128, vocabularySize: 200_064, bitsPerWeight: 4.85),
        "llama-7b-q4_0": .transformer(name: "llama-7b-q4_0", layers: 32, embeddingLength: 4096, feedForwardLength: 11008,
                                      heads: 32, keyValueHeads: 32, headLength: 128, vocabularySize: 32000, bitsPerWeight: 4.5),
    ]
}

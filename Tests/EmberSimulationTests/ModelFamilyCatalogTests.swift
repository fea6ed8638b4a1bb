import EmberDevice
import EmberSimulation
import Testing

/// The named model families of the seed, as the cost model sees them (`--model-spec`).
@Suite struct ModelFamilyCatalogTests {
    @Test func everySeedFamilyIsNamedAtEveryQuantization() {
        let families = ["gemma4-e2b", "gemma4-e4b", "gemma4-26b-a4b", "gemma4-31b", "gemma3n-e2b", "gemma3n-e4b", "phi4-mini",
                        "smollm2-135m", "qwen3-4b", "qwen3-30b-a3b", "ministral-8b", "mistral-small-3.1-24b"]
        for family in families {
            for quantization in ["q4_0", "q4_k_m", "q8_0", "f16"] {
                #expect(ModelWorkload.catalog["\(family)-\(quantization)"] != nil, "missing \(family)-\(quantization)")
            }
        }
        // Bytes scale with the quantization.
        let q4 = ModelWorkload.catalog["qwen3-4b-q4_0"]!, q8 = ModelWorkload.catalog["qwen3-4b-q8_0"]!
        #expect(abs(q8.weightBytesPerToken / q4.weightBytesPerToken - 8.5 / 4.5) < 1e-9)
        #expect(q4.parameterCount > 3.5e9 && q4.parameterCount < 4.5e9)
    }

    @Test func mixtureOfExpertsReadsOnlyRoutedExpertsPerToken() {
        let moe = ModelWorkload.catalog["qwen3-30b-a3b-q4_k_m"]!
        // A decode step reads the active 3.3B parameters, not the 30.5B stored.
        #expect(moe.decodeCost(position: 0).bytes < 0.15 * moe.residentWeightBytes)
        // A 512-token prompt batch routes to nearly every expert.
        let prompt = moe.prefillCost(tokens: 512, position: 0)
        #expect(prompt.bytes > 0.9 * moe.residentWeightBytes)
        // "Effective" Gemma models keep per-layer embeddings out of the per-token work.
        let e4b = ModelWorkload.catalog["gemma4-e4b-q4_k_m"]!
        #expect(e4b.weightBytesPerToken < 0.6 * e4b.residentWeightBytes)
    }
}

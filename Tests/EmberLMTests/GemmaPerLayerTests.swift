import EmberGGUF
@testable import EmberLM
import Foundation
import Testing

/// Gemma 4 and Gemma 3n beyond the whole-sequence comparison of `TinyArchitectureTests`: tokens fed
/// in pieces (the KV cache, shared across layers, carried between calls) give the logits of the
/// whole sequence at once, and the memory plan counts the cache and weights these models really use.
@Suite struct GemmaPerLayerTests {
    static func model(_ name: String, options: LoadOptions = LoadOptions()) throws -> TransformerModel {
        try TestSupport.tinyModel(name, options: options)
    }

    /// Logits of every position of `tokens`, fed `piece` tokens per call.
    static func logits(_ model: TransformerModel, _ tokens: [Int32], piece: Int, batchSize: Int) throws -> [[Float]] {
        let session = InferenceSession(model: model, contextLength: 128, batchSize: batchSize, threadCount: 2)
        var rows: [[Float]] = []
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + piece)
            try session.evaluate(Array(tokens[start..<end]), logits: .all) { _, logits in rows.append(Array(logits)) }
            start = end
        }
        return rows
    }

    @Test(arguments: ["gemma4-f32", "gemma3n-f32", "gemma4-q8_0"])
    func piecesMatchTheWholeSequence(_ name: String) throws {
        let model = try Self.model(name)
        let tokens: [Int32] = (0..<40).map { Int32(($0 * 37 + 11) % model.configuration.vocabularySize) }
        let whole = try Self.logits(model, tokens, piece: tokens.count, batchSize: 64)
        for (piece, batch) in [(1, 64), (7, 64), (40, 16)] {
            let pieces = try Self.logits(model, tokens, piece: piece, batchSize: batch)
            #expect(pieces.count == whole.count)
            var largest: Float = 0
            for (a, b) in zip(whole, pieces) {
                for (x, y) in zip(a, b) { largest = max(largest, abs(x - y)) }
            }
            #expect(largest < 1e-3, "\(name): pieces of \(piece) (batch \(batch)) differ by \(largest)")
        }
        // Streamed weights: the same sums from the file's layout.
        let streamed = try Self.logits(Self.model(name, options: LoadOptions(streamWeights: true)), tokens, piece: 9, batchSize: 64)
        var largest: Float = 0
        for (a, b) in zip(whole, streamed) {
            for (x, y) in zip(a, b) { largest = max(largest, abs(x - y)) }
        }
        #expect(largest < 1e-3, "\(name): streamed weights differ by \(largest)")
    }

    /// A quantized KV cache (rows of layers with narrower heads use a prefix of the widest row)
    /// changes logits only by its rounding.
    @Test(arguments: ["gemma4-f32", "gemma3n-f32"])
    func quantizedCacheStaysClose(_ name: String) throws {
        let model = try Self.model(name)
        let tokens: [Int32] = (0..<40).map { Int32(($0 * 53 + 5) % model.configuration.vocabularySize) }
        var rows: [KeyValueType: [[Float]]] = [:]
        for type in [KeyValueType.f16, .q8_0] {
            let session = InferenceSession(model: model, contextLength: 64, batchSize: 16, threadCount: 1, keyValueType: type)
            try session.evaluate(tokens, logits: .all) { _, logits in rows[type, default: []].append(Array(logits)) }
        }
        var largest: Float = 0
        for (a, b) in zip(rows[.f16]!, rows[.q8_0]!) {
            for (x, y) in zip(a, b) { largest = max(largest, abs(x - y)) }
        }
        #expect(rows[.q8_0]?.count == tokens.count)
        #expect(largest < 0.2, "\(name): a Q8_0 KV cache moves logits by \(largest)")
    }

    @Test func cacheAndWeightsAreCountedAsUsed() throws {
        let model = try Self.model("gemma4-f32")
        // 10 layers, the last 5 reuse earlier caches; rows as wide as the widest layer's keys
        // (2 KV heads × 32 on sliding layers, 1 × 64 on global ones).
        #expect(model.keyValueCacheShape == KeyValueCacheShape(layerCount: 5, keyWidth: 64, valueWidth: 64))
        let plan = try MemoryPlan.make(file: model.file, context: 256, threadCount: 1)
        #expect(plan.keyValueCacheBytes == 5 * 256 * 2 * 64 * 2)
        // The per-layer token table is looked up, never multiplied.
        let table = try #require(model.file.tensor(named: "per_layer_token_embd.weight"))
        let multiplied = model.file.tensors.filter { $0.dimensions.count >= 2 && $0.name != table.name }.reduce(0) { $0 + $1.byteCount }
        #expect(model.weightBytesPerToken == multiplied)
        let session = InferenceSession(model: model, contextLength: 256, batchSize: 64, threadCount: 1)
        #expect(session.cache.layerCount == 5)

        let gemma3n = try Self.model("gemma3n-f32")
        // Layers 20 and 21 share the caches of layers 18 and 19.
        #expect(gemma3n.keyValueCacheShape == KeyValueCacheShape(layerCount: 20, keyWidth: 32, valueWidth: 32))
    }
}

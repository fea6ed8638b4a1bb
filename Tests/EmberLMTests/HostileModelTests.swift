import EmberCore
import EmberGGUF
import EmberLM
import Foundation
import Testing

/// Copies of the tiny models with one thing changed, the way a damaged or hostile file would
/// change it.
enum HostileModel {
    static func path(_ name: String) -> String {
        TestSupport.fixturesDirectory.appendingPathComponent("tiny-models/\(name).gguf").path
    }

    /// The bytes of tiny model `name` with `metadata` set (nil removes a key) and each tensor's
    /// bytes passed through `tensor` (name, type, bytes).
    static func bytes(_ name: String, metadata: [String: GGUFValue?] = [:],
                      tensor: (String, TensorType, inout [UInt8]) -> Void = { _, _, _ in }) throws -> [UInt8] {
        let file = try GGUFFile(path: path(name))
        var writer = GGUFWriter(version: 3, alignment: file.alignment)
        for key in file.metadataKeys where key != "general.alignment" {
            if let replacement = metadata[key] {
                if let replacement { writer.set(key, replacement) }
            } else {
                writer.set(key, file.metadata[key]!)
            }
        }
        for (key, value) in metadata where file.metadata[key] == nil {
            if let value { writer.set(key, value) }
        }
        for info in file.tensors {
            var data = file.withTensorBytes(info) { Array($0) }
            tensor(info.name, info.type, &data)
            writer.addTensor(name: info.name, dimensions: info.dimensions, type: info.type, data: data)
        }
        return writer.serialized()
    }

    static func file(_ name: String, metadata: [String: GGUFValue?] = [:],
                     tensor: (String, TensorType, inout [UInt8]) -> Void = { _, _, _ in }) throws -> GGUFFile {
        try GGUFFile(bytes: bytes(name, metadata: metadata, tensor: tensor))
    }

    /// Sets every F32 value of tensor `target` to `value`.
    static func fill(_ target: String, with value: Float) -> (String, TensorType, inout [UInt8]) -> Void {
        { name, type, data in
            guard name == target, type == .f32 else { return }
            data.withUnsafeMutableBytes { raw in
                for index in 0..<(raw.count / 4) { raw.storeBytes(of: value.bitPattern.littleEndian, toByteOffset: index * 4, as: UInt32.self) }
            }
        }
    }

    /// What planning and loading `file` say: both must throw (never trap) with the same message,
    /// which the configuration gives too when the fault is in a key every architecture shares.
    static func refusal(_ file: GGUFFile) -> String? {
        var messages: [String] = []
        do { _ = try MemoryPlan.make(file: file, context: 256, threadCount: 1) } catch { messages.append(error.description) }
        do { _ = try TransformerModel(file: file) } catch { messages.append(error.description) }
        do { _ = try ModelConfiguration(gguf: file) } catch { messages.append(error.description) }
        guard messages.count >= 2, Set(messages).count == 1 else { return nil }
        return messages[0]
    }
}

@Suite("Hostile model files are refused before anything is sized from them")
struct HostileModelTests {
    /// A key of the tiny qwen3 model, a hostile value, and what the message must contain.
    struct Case: CustomStringConvertible, Sendable {
        var model = "qwen3-f32"
        var key: String
        var value: GGUFValue?
        var mentions: [String]
        var description: String { "\(model) \(key) = \(value.map { "\($0)" } ?? "removed")" }
    }

    static let cases: [Case] = [
        Case(key: "qwen3.block_count", value: .uint32(0xFFFF_FFFF), mentions: ["qwen3.block_count", "4294967295", "4 blocks"]),
        Case(key: "qwen3.block_count", value: .uint32(3), mentions: ["qwen3.block_count", "3", "4 blocks"]),
        Case(key: "qwen3.block_count", value: .uint32(5), mentions: ["qwen3.block_count", "5", "4 blocks"]),
        Case(key: "qwen3.block_count", value: .uint64(UInt64.max), mentions: ["qwen3.block_count", "18446744073709551615", "not a positive integer"]),
        Case(key: "qwen3.block_count", value: .string("four"), mentions: ["qwen3.block_count", "not a positive integer"]),
        Case(key: "qwen3.block_count", value: nil, mentions: ["missing 'qwen3.block_count'"]),
        Case(key: "qwen3.embedding_length", value: .uint32(0x7FFF_FFFF), mentions: ["qwen3.embedding_length", "2147483647", "128"]),
        Case(key: "qwen3.embedding_length", value: .uint32(64), mentions: ["qwen3.embedding_length", "64", "128"]),
        Case(key: "qwen3.vocab_size", value: .uint32(1 << 30), mentions: ["vocab_size", "1073741824", "272"]),
        Case(key: "qwen3.vocab_size", value: .uint32(100), mentions: ["vocab", "100", "272"]),
        Case(key: "qwen3.feed_forward_length", value: .uint32(1 << 31), mentions: ["qwen3.feed_forward_length", "2147483648"]),
        Case(key: "qwen3.feed_forward_length", value: .uint32(321), mentions: ["qwen3.feed_forward_length", "321", "320"]),
        Case(key: "qwen3.attention.head_count", value: .uint32(1 << 20), mentions: ["qwen3.attention.head_count", "1048576"]),
        Case(key: "qwen3.attention.head_count", value: .uint32(8), mentions: ["qwen3.attention.head_count", "8", "192"]),
        Case(key: "qwen3.attention.head_count_kv", value: .uint32(4), mentions: ["head_count_kv", "4", "96"]),
        Case(key: "qwen3.attention.head_count_kv", value: .uint32(0), mentions: ["head_count_kv"]),
        Case(key: "qwen3.attention.head_count_kv", value: .array(.uint32([2, 2, 2, 0xFFFF_FFFF])), mentions: ["head_count_kv", "4294967295"]),
        Case(key: "qwen3.attention.key_length", value: .uint32(0xFFFF_FFFF), mentions: ["qwen3.attention.key_length", "4294967295"]),
        Case(key: "qwen3.attention.key_length", value: .uint32(96), mentions: ["key length 96", "192"]),
        Case(key: "qwen3.attention.value_length", value: .uint32(24), mentions: ["value length 24", "96"]),
        Case(key: "qwen3.context_length", value: .uint64(1 << 40), mentions: ["qwen3.context_length", "1099511627776"]),
        Case(key: "qwen3.context_length", value: .int32(-1), mentions: ["qwen3.context_length", "-1"]),
        Case(key: "qwen3.rope.dimension_count", value: .uint32(1 << 30), mentions: ["qwen3.rope.dimension_count"]),
        Case(key: "qwen3.rope.freq_base", value: .float32(.nan), mentions: ["qwen3.rope.freq_base", "nan"]),
        Case(key: "qwen3.attention.layer_norm_rms_epsilon", value: .float32(.infinity), mentions: ["layer_norm_rms_epsilon"]),
        Case(key: "qwen3.rope.scaling.original_context_length", value: .uint32(0), mentions: ["original_context_length", "0"]),
        Case(key: "qwen3.rope.scaling.attn_factor", value: .float32(.nan), mentions: ["attn_factor"]),
        Case(key: "tokenizer.ggml.tokens", value: .array(.string((0..<300).map { "t\($0)" })), mentions: ["300", "272"]),
        Case(model: "qwen3moe-f32", key: "qwen3moe.expert_count", value: .uint32(0xFFFF_FFFF), mentions: ["qwen3moe.expert_count"]),
        Case(model: "qwen3moe-f32", key: "qwen3moe.expert_used_count", value: .uint32(9), mentions: ["qwen3moe.expert_used_count"]),
        Case(model: "gemma3n-f32", key: "gemma3n.attention.shared_kv_layers", value: .uint32(0xFFFF_FFFF), mentions: ["gemma3n.attention.shared_kv_layers"]),
        Case(model: "gemma3n-f32", key: "gemma3n.altup.num_inputs", value: .uint32(1 << 20), mentions: ["gemma3n.altup.num_inputs"]),
        Case(model: "gemma3n-f32", key: "gemma3n.embedding_length_per_layer_input", value: .uint32(1 << 30), mentions: ["embedding_length_per_layer_input"]),
        Case(model: "gemma3n-f32", key: "gemma3n.attention.sliding_window_pattern", value: .array(.bool([true, false])), mentions: ["sliding_window_pattern", "2 values", "22 layers"]),
        Case(model: "gemma3n-f32", key: "gemma3n.attention.sliding_window", value: .uint64(1 << 40), mentions: ["gemma3n.attention.sliding_window"]),
        Case(model: "gemma4-f32", key: "gemma4.attention.key_length_swa", value: .uint32(0xFFFF_FFFF), mentions: ["gemma4.attention.key_length_swa"]),
        Case(model: "gemma4-f32", key: "gemma4.attention.shared_kv_layers", value: .uint32(11), mentions: ["gemma4.attention.shared_kv_layers", "11"]),
        Case(model: "gemma4-f32", key: "gemma4.feed_forward_length", value: .array(.uint32([UInt32](repeating: 0xFFFF_FFFF, count: 10))), mentions: ["gemma4.feed_forward_length"]),
        Case(model: "gemma4-f32", key: "gemma4.attention.head_count_kv", value: .array(.uint32([1, 1])), mentions: ["head_count_kv", "2 values", "10 layers"]),
    ]

    @Test("A count or dimension that disagrees with the tensors or any sane limit: one message naming the key", arguments: cases)
    func hostileMetadata(_ hostile: Case) throws {
        let file = try HostileModel.file(hostile.model, metadata: [hostile.key: hostile.value])
        let message = try #require(HostileModel.refusal(file), "configuration, plan and load must all refuse \(hostile)")
        for word in hostile.mentions {
            #expect(message.contains(word), "'\(message)' does not mention \(word)")
        }
        #expect(!message.contains("\n"))
    }

    @Test("The unchanged tiny models still read, plan and load", arguments: ["qwen3-f32", "qwen3moe-f32", "gemma3n-f32", "gemma4-f32",
                                                                            "gemma4moe-f32", "phi3-f32", "mistral3-f32", "ministral-f32"])
    func unchangedModelsLoad(_ name: String) throws {
        let file = try HostileModel.file(name)
        _ = try ModelConfiguration(gguf: file)
        _ = try MemoryPlan.make(file: file, context: 256, threadCount: 1)
        _ = try TransformerModel(file: file)
    }

    @Test("An unsupported architecture is named with the supported ones, not as a missing key")
    func unsupportedArchitecture() throws {
        let file = try HostileModel.file("qwen3-f32", metadata: ["general.architecture": GGUFValue.string("lLama")])
        let message = try #require(HostileModel.refusal(file))
        #expect(message.contains("'lLama' is not supported"), "\(message)")
        #expect(message.contains("llama") && message.contains("qwen3") && message.contains("gemma3"), "\(message)")
        #expect(!message.contains("missing"))
    }

    @Test("A plan never overflows: contexts beyond the limit are refused, byte sums saturate")
    func planArithmetic() throws {
        let file = try HostileModel.file("qwen3-f32")
        for context in [Int.max, 1 << 62, MemoryPlan.maximumContext + 1, 0, -5] {
            #expect(throws: LanguageModelError.self, "context \(context)") {
                try MemoryPlan.make(file: file, context: context, threadCount: 1)
            }
        }
        let largest = try MemoryPlan.make(file: file, context: MemoryPlan.maximumContext, threadCount: 1)
        #expect(largest.totalBytes > largest.keyValueCacheBytes && largest.totalBytes < Int.max)
        #expect(KeyValueCache.byteCount(layerCount: 1 << 40, capacity: 1 << 40, keyWidth: 1 << 20, valueWidth: 1 << 20) == Int.max)
        var plan = largest
        plan.weightsBytes = Int.max - 1
        plan.budgetBytes = 1 << 40
        #expect(plan.totalBytes == Int.max && !plan.fits)
    }

    @Test("Non-finite weights: evaluation throws naming the position, never hands NaN to a consumer",
          arguments: [Float.nan, Float.infinity])
    func nonFiniteWeights(_ value: Float) throws {
        let file = try HostileModel.file("qwen3-f32", tensor: HostileModel.fill("output_norm.weight", with: value))
        let model = try TransformerModel(file: file)
        let session = InferenceSession(model: model, contextLength: 32, threadCount: 1)
        var consumed = 0
        do {
            try session.evaluate([1, 2, 3], logits: LogitSelection.all) { _, _ in consumed += 1 }
            Issue.record("evaluation of NaN weights did not throw")
        } catch let error as LanguageModelError {
            #expect(error.kind == .nonFinite)
            #expect(error.message.contains("position 0"), "\(error.message)")
        }
        #expect(consumed == 0)
    }

    @Test("Non-finite logits stop a generation with an error, greedy or sampled", arguments: [Float(0), 0.8])
    func nonFiniteGeneration(_ temperature: Float) async throws {
        let bytes = try HostileModel.bytes("qwen3-f32", tensor: HostileModel.fill("output_norm.weight", with: Float.nan))
        let path = NSTemporaryDirectory() + "ember-nan-\(UUID().uuidString).gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let model = try LanguageModel(path: path)
        let generator = Generator(model: model, contextLength: 64, threadCount: 1)
        var tokens = 0
        await #expect(throws: LanguageModelError.self) {
            for try await event in generator.generate(GenerationRequest(
                prompt: .ids([1, 2, 3]), maxTokens: 4, sampling: SamplingParameters(temperature: temperature, seed: 1))) {
                if case .token = event { tokens += 1 }
            }
        }
        #expect(tokens == 0)
    }
}

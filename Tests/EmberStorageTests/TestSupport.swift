import EmberCore
import EmberGGUF
import Foundation
import Testing

/// A small deterministic generator (SplitMix64), so failures reproduce from the seed.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
    mutating func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: next()) } }
}

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("ember-storage-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    @discardableResult
    func write(_ name: String, _ bytes: [UInt8]) throws -> String {
        let target = file(name)
        try Data(bytes).write(to: URL(fileURLWithPath: target))
        return target
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

func readFile(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Tiny GGUF files for tests: tensors of every type with bytes that look like quantized weights
/// (half-precision scales of plausible size, random quants), so grouping has something to do.
enum SampleModels {
    /// Bytes for `blocks` blocks of `type`.
    static func tensorBytes(_ type: TensorType, blocks: Int, random: inout TestRandom) -> [UInt8] {
        var bytes = random.bytes(blocks * type.bytesPerBlock)
        // Half-precision scales near 0.01: high byte 0x20...0x23.
        let halves: [Int]
        switch type {
        case .q4_0, .q5_0, .q8_0: halves = [0]
        case .q4_1, .q5_1, .q8_1, .q4_K, .q5_K: halves = [0, 2]
        case .q6_K: halves = [208]
        case .q2_K: halves = [80, 82]
        case .q3_K: halves = [108]
        default: halves = []
        }
        for block in 0..<blocks {
            for half in halves { bytes[block * type.bytesPerBlock + half + 1] = 0x20 | UInt8(random.below(4)) }
        }
        return bytes
    }

    /// One tensor of every type, `blocks` blocks each (F32 and friends: `blocks` elements × 32), plus
    /// metadata.
    static func everyType(blocks: Int = 40, alignment: Int = 32, seed: UInt64 = 1) -> [UInt8] {
        var random = TestRandom(seed: seed)
        var writer = GGUFWriter(alignment: alignment)
        writer.set("general.architecture", .string("llama"))
        writer.set("general.name", .string("storage test"))
        writer.set("tokenizer.ggml.tokens", .array(.string((0..<200).map { "token\($0)" })))
        for type in TensorType.allCases {
            let elementBlocks = type.blockSize == 1 ? blocks * 32 : blocks
            let elements = elementBlocks * type.blockSize
            writer.addTensor(name: "blk.0.\(type.name).weight", dimensions: [elements], type: type,
                             data: tensorBytes(type, blocks: elementBlocks, random: &random))
        }
        // An odd-sized tensor, so alignment padding follows it.
        writer.addTensor(name: "blk.1.norm.weight", dimensions: [7], type: .f32, data: random.bytes(28))
        writer.addTensor(name: "blk.1.ffn_up.weight", dimensions: [32, 3], type: .q4_1, data: tensorBytes(.q4_1, blocks: 3, random: &random))
        return writer.serialized()
    }
}

/// Real model files: `$EMBER_MODELS` or `~/.cache/ember/models`.
enum RealModels {
    static var directory: String {
        if let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"], !directory.isEmpty { return directory }
        return NSHomeDirectory() + "/.cache/ember/models"
    }

    static let files = [
        "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma3": "gemma-3-270m-q4_k_m.gguf",
    ]

    /// SHA-256 of each file, as the model catalog records it.
    static let sha256 = [
        "smollm2": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "gemma3": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ]

    static var required: Bool { ProcessInfo.processInfo.environment["EMBER_REQUIRE_MODELS"] == "1" }

    static func path(_ alias: String) -> String { directory + "/" + files[alias]! }

    /// Run a real-model test when the model is cached, or when EMBER_REQUIRE_MODELS=1 (then a
    /// missing model fails the test instead of skipping it).
    static func available(_ alias: String) -> Bool {
        required || FileManager.default.fileExists(atPath: path(alias))
    }

    static func requirePath(_ alias: String) throws -> String {
        let path = path(alias)
        try #require(FileManager.default.fileExists(atPath: path),
                     "model \(alias) is missing at \(path); run `ember models fetch \(alias)`")
        return path
    }
}

import EmberGGUF
import EmberLM
import Foundation
import Testing

/// Locations of fixtures and real model files for tests.
enum TestSupport {
    /// `Tests/Fixtures`, found from this source file.
    static var fixturesDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
    }

    static func fixture(_ name: String) throws -> Data {
        try Data(contentsOf: fixturesDirectory.appendingPathComponent(name))
    }

    /// The model cache: `$EMBER_MODELS` or `~/.cache/ember/models`.
    static var modelsDirectory: String {
        if let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"], !directory.isEmpty { return directory }
        return NSHomeDirectory() + "/.cache/ember/models"
    }

    /// A tiny random-weight model (`Tests/Fixtures/tiny-models/<name>.gguf`), loaded. These are
    /// written by `make bootstrap` (scripts/tiny_models/write_fixtures.sh), not committed; the test
    /// fails, naming the command, when one is missing.
    static func tinyModel(_ name: String, options: LoadOptions = LoadOptions()) throws -> TransformerModel {
        let path = fixturesDirectory.appendingPathComponent("tiny-models/\(name).gguf").path
        try #require(FileManager.default.fileExists(atPath: path),
                     "tiny model \(name).gguf is missing; run make bootstrap (or scripts/tiny_models/write_fixtures.sh)")
        return try TransformerModel(file: GGUFFile(path: path), options: options)
    }

    static let modelFiles = [
        "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "gemma3": "gemma-3-270m-q4_k_m.gguf",
    ]

    /// The path of a real model; the test fails (it does not skip) when the file is missing,
    /// so CI cannot pass without the models.
    static func modelPath(_ alias: String) throws -> String {
        let path = modelsDirectory + "/" + modelFiles[alias]!
        try #require(FileManager.default.fileExists(atPath: path),
                     "model \(alias) is missing at \(path); run `ember models fetch \(alias)` (or make test, which fetches it)")
        return path
    }
}

/// llama.cpp's reference outputs for one model (Tests/Fixtures/llamacpp-*.json).
struct ReferenceFile: Decodable {
    struct Case: Decodable {
        var kind: String
        var prompt: String
        var prompt_ids: [Int32]
        var gen_ids: [Int32]
        var gen_text: String
        var first_eog_index: Int
        /// Per generated position, the five largest logits as [id, logit].
        var top5: [[[Double]]]
    }

    var model: String
    var prompts: [Case]
    var extra_prompts: [Case]

    var allCases: [Case] { prompts + extra_prompts }

    static func load(_ name: String) throws -> ReferenceFile {
        try JSONDecoder().decode(ReferenceFile.self, from: TestSupport.fixture(name))
    }
}

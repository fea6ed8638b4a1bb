import EmberGGUF
import Foundation
import Testing

/// Hostile model files and out-of-range values on the command line: one clear line on stderr
/// and a non-zero exit, never a trap, a hang or output that is not what it claims to be.
@Suite("ember refuses bad model input", .serialized)
struct ModelInputTests {
    static let tinyModels = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-models")

    /// A copy of tiny model `name` with `metadata` replaced and tensor `fill` (F32) set to `value`,
    /// written to a temporary file.
    static func hostile(_ name: String, metadata: [String: GGUFValue] = [:], fill: String? = nil, value: Float = .nan) throws -> String {
        let file = try GGUFFile(path: tinyModels.appendingPathComponent("\(name).gguf").path)
        var writer = GGUFWriter(version: 3, alignment: file.alignment)
        for key in file.metadataKeys where key != "general.alignment" { writer.set(key, metadata[key] ?? file.metadata[key]!) }
        for info in file.tensors {
            var data = file.withTensorBytes(info) { Array($0) }
            if info.name == fill {
                data.withUnsafeMutableBytes { raw in
                    for index in 0..<(raw.count / 4) { raw.storeBytes(of: value.bitPattern, toByteOffset: index * 4, as: UInt32.self) }
                }
            }
            writer.addTensor(name: info.name, dimensions: info.dimensions, type: info.type, data: data)
        }
        let path = NSTemporaryDirectory() + "ember-hostile-\(UUID().uuidString).gguf"
        try writer.write(to: path)
        return path
    }

    /// The one error line of a failed run (usage hints aside); records an issue otherwise.
    static func errorLine(_ arguments: [String], input: String? = nil) throws -> String {
        let result = try CommandContractTests.run(arguments, input: input)
        #expect(result.status != 0, "\(arguments) exited 0: \(result.standardOutput)")
        #expect(result.status < 128 && !result.standardError.contains("Fatal error"), "\(arguments) crashed: \(result.standardError)")
        CommandContractTests.expectErrorOutput(result, arguments)
        let lines = result.standardError.split(separator: "\n").filter { !$0.isEmpty && !$0.hasPrefix("Usage:") && !$0.hasPrefix("  See") }
        #expect(lines.count == 1, "stderr of \(arguments): \(result.standardError)")
        return lines.first.map(String.init) ?? ""
    }

    @Test("block_count = 0xFFFFFFFF: generate, plan and logits name the key, the value and the blocks present")
    func blockCount() throws {
        let path = try Self.hostile("qwen3-f32", metadata: ["qwen3.block_count": .uint32(0xFFFF_FFFF)])
        defer { try? FileManager.default.removeItem(atPath: path) }
        for arguments in [["generate", "--model", path, "--prompt", "hi"], ["plan", "--model", path, "--json"],
                          ["logits", "--model", path, "--ids", "1,2"], ["generate", "--model", path, "--prompt", "hi", "--memory-budget", "1GiB"]] {
            let line = try Self.errorLine(arguments)
            #expect(line.contains("qwen3.block_count") && line.contains("4294967295") && line.contains("4 blocks"), "\(line)")
        }
    }

    @Test("logits --top beyond the vocabulary prints the whole row as valid JSON")
    func logitsTopBeyondVocabulary() throws {
        let path = Self.tinyModels.appendingPathComponent("qwen3-f32.gguf").path
        let result = try CommandContractTests.run(["logits", "--model", path, "--ids", "1,2", "--top", "9223372036854775807"])
        #expect(result.status == 0, "\(result.standardError)")
        let rows = try #require(result.json?["top"] as? [[[Double]]])
        #expect(rows.count == 2 && rows.allSatisfy { $0.count == 272 })
    }

    @Test("An unsupported architecture is named with the supported ones")
    func unsupportedArchitecture() throws {
        let path = try Self.hostile("qwen3-f32", metadata: ["general.architecture": .string("lLama")])
        defer { try? FileManager.default.removeItem(atPath: path) }
        for command in ["generate", "plan"] {
            let line = try Self.errorLine([command, "--model", path] + (command == "generate" ? ["--prompt", "hi"] : []))
            #expect(line.contains("'lLama' is not supported") && line.contains("llama, mistral"), "\(line)")
        }
    }

    @Test("NaN or infinite weights: generate (greedy or sampled), logits and perplexity fail naming the position",
          arguments: [Float.nan, Float.infinity])
    func nonFiniteWeights(_ value: Float) throws {
        let path = try Self.hostile("qwen3-f32", fill: "output_norm.weight", value: value)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = NSTemporaryDirectory() + "ember-text-\(UUID().uuidString).txt"
        try String(repeating: "abc def ghi ", count: 100).write(toFile: text, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: text) }
        for arguments in [["generate", "--model", path, "--prompt", "hi"],
                          ["generate", "--model", path, "--prompt", "hi", "--temperature", "0"],
                          ["generate", "--model", path, "--prompt", "hi", "--temperature", "0", "--json"],
                          ["logits", "--model", path, "--ids", "1,2"],
                          ["perplexity", "--model", path, "--file", text, "--context", "16", "--json"]] {
            let line = try Self.errorLine(arguments)
            #expect(line.contains("non-finite") && line.contains("position"), "\(arguments): \(line)")
        }
    }

    @Test("--context beyond any plan is refused before arithmetic", arguments: ["9223372036854775807", "4611686018427387904", "16777217", "-1"])
    func hugeContext(_ context: String) throws {
        for arguments in [["plan", "--model", "smollm2", "--context=\(context)"],
                          ["generate", "--model", "smollm2", "--prompt", "hi", "--context=\(context)"]] {
            let line = try Self.errorLine(arguments)
            #expect(line.contains("--context") && line.contains("16777216"), "\(line)")
        }
    }

    @Test("plan and generate agree on a context beyond the trained one: both use the trained context and say so")
    func trainedContext() throws {
        let plan = try CommandContractTests.run(["plan", "--model", "smollm2", "--context", "10000000", "--json"])
        #expect(plan.status == 0)
        #expect(plan.json?["context"] as? Int == 8192)
        #expect(plan.standardError.contains("trained context"))
        let generate = try CommandContractTests.run(["generate", "--model", "smollm2", "--prompt", "hi", "--context", "10000000",
                                                     "--max-tokens", "1", "--temperature", "0", "--json"])
        #expect(generate.status == 0)
        #expect((generate.json?["stats"] as? [String: Any])?["context"] as? Int == 8192)
        #expect(generate.standardError.contains("trained context"))
    }

    @Test("A prompt longer than the model reads: the message gives the prompt's length and the model's maximum")
    func promptBeyondTrainedContext() throws {
        let prompt = String(repeating: " hi", count: 12_000)
        let line = try Self.errorLine(["generate", "--model", "smollm2", "--prompt", prompt, "--context", "100000"])
        #expect(line.contains("12000 tokens") && line.contains("at most 8192"), "\(line)")
        let short = try Self.errorLine(["generate", "--model", "smollm2", "--prompt", String(repeating: " hi", count: 100), "--context", "64"])
        #expect(short.contains("100 tokens") && short.contains("--context") && short.contains("8192"), "\(short)")
    }

    static let badSampling: [[String]] = [
        ["--temperature", "nan"], ["--temperature", "inf"], ["--temperature=-1"], ["--top-k=-1"],
        ["--top-p", "nan"], ["--min-p", "2"], ["--repeat-penalty", "nan"], ["--repeat-penalty", "0"],
        ["--repeat-penalty", "1e-45"], ["--frequency-penalty", "nan"], ["--presence-penalty", "nan"],
        ["--presence-penalty", "1e30"], ["--context-shift=-1"],
    ]

    @Test("Sampling values out of range: one line naming the option and its range", arguments: badSampling)
    func sampling(_ option: [String]) throws {
        let line = try Self.errorLine(["generate", "--model", "smollm2", "--prompt", "hi"] + option)
        let name = option[0].split(separator: "=")[0]
        #expect(line.contains(name) || (name.hasSuffix("-p") && line.contains("--top-p and --min-p")), "\(line)")
        #expect(line.contains("between") || line.contains("at least"), "\(line)")
    }

    @Test("A tiny temperature with no other filter generates greedily, not garbage")
    func tinyTemperature() throws {
        let tiny = try CommandContractTests.run(["generate", "--model", "smollm2", "--prompt", "The capital of France is", "--max-tokens", "8",
                                                 "--temperature", "1e-38", "--top-k", "0", "--min-p", "0", "--json"])
        let greedy = try CommandContractTests.run(["generate", "--model", "smollm2", "--prompt", "The capital of France is", "--max-tokens", "8",
                                                   "--temperature", "0", "--json"])
        #expect(tiny.status == 0 && greedy.status == 0)
        #expect(tiny.json?["ids"] as? [Int] == greedy.json?["ids"] as? [Int])
    }

    @Test("generate --prompt with invalid UTF-8 is refused, as tokenize refuses it")
    func invalidUTF8Prompt() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        // The shell passes the raw bytes; Foundation's Process could not.
        process.arguments = ["-c", "exec \"$0\" generate --model smollm2 --prompt \"$(printf 'ab\\377cd')\" --max-tokens 1",
                             CommandContractTests.executable.path]
        let error = Pipe(), output = Pipe()
        process.standardError = error
        process.standardOutput = output
        try process.run()
        let stderr = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stdout = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(stdout.isEmpty)
        #expect(stderr.contains("--prompt is not valid UTF-8"), "\(stderr)")
        // Valid text containing U+FFFD itself is still a prompt.
        let replacement = try CommandContractTests.run(["generate", "--model", "smollm2", "--prompt", "a\u{FFFD}b", "--max-tokens", "1", "--temperature", "0"])
        #expect(replacement.status == 0, "\(replacement.standardError)")
    }
}

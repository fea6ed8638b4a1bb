import Foundation
import Testing

/// The `ember` commands and JSON fields the issues spell out, run as a user runs them.
@Suite("ember command contracts", .serialized)
struct CommandContractTests {
    /// The `ember` binary built beside this test bundle.
    static var executable: URL {
        var directory = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = directory.appendingPathComponent("ember")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/release/ember")
    }

    struct Output {
        var status: Int32
        var standardOutput: String
        var standardError: String
        var json: [String: Any]? {
            (try? JSONSerialization.jsonObject(with: Data(standardOutput.utf8))) as? [String: Any]
        }
    }

    /// A failed command's standard output: nothing, or with `--json` exactly one `{"error": "…"}`
    /// object whose text is the one line on standard error.
    static func expectErrorOutput(_ result: Output, _ arguments: [String]) {
        guard arguments.prefix(while: { $0 != "--" }).contains("--json") else {
            #expect(result.standardOutput.isEmpty, "\(arguments) printed \(result.standardOutput)")
            return
        }
        let object = result.json
        #expect(object?.count == 1 && object?["error"] is String, "\(arguments) printed \(result.standardOutput)")
        if let message = object?["error"] as? String {
            #expect(result.standardError.contains(message), "\(arguments): stdout and stderr disagree")
        }
        #expect(result.standardOutput.split(separator: "\n").count == 1, "\(arguments) printed \(result.standardOutput)")
    }

    static func run(_ arguments: [String], input: String? = nil) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe(), error = Pipe(), inputPipe = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = inputPipe
        try process.run()
        if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inputPipe.fileHandleForWriting.close()
        let outData = output.fileHandleForReading.readDataToEndOfFile()
        let errData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, standardOutput: String(decoding: outData, as: UTF8.self),
                      standardError: String(decoding: errData, as: UTF8.self))
    }

    @Test("tokenize: text on stdin → {\"ids\":[…]}, BOS as the file says, special text matched only when asked")
    func tokenize() throws {
        let plain = try Self.run(["tokenize", "--model", "smollm2"], input: "<|im_start|>Hello")
        #expect(plain.status == 0)
        let ids = try #require(plain.json?["ids"] as? [Int])
        #expect(!ids.contains(1))
        let special = try Self.run(["tokenize", "--model", "smollm2", "--parse-special"], input: "<|im_start|>Hello")
        #expect(special.json?["ids"] as? [Int] == [1, 19556])
        let gemma = try Self.run(["tokenize", "--model", "gemma3"], input: "Hello")
        #expect(gemma.json?["ids"] as? [Int] == [2, 9259])
        let noSpecial = try Self.run(["tokenize", "--model", "gemma3", "--no-special"], input: "Hello")
        #expect(noSpecial.json?["ids"] as? [Int] == [9259])
    }

    @Test("logits: one top-k list per input position")
    func logits() throws {
        let result = try Self.run(["logits", "--model", "smollm2", "--ids", "504,3575,282,4649,314", "--top", "3"])
        #expect(result.status == 0)
        let top = try #require(result.json?["top"] as? [[[Double]]])
        #expect(top.count == 5)
        #expect(top.allSatisfy { $0.count == 3 })
        #expect(Int(top[4][0][0]) == 7042, "after 'The capital of France is' comes ' Paris'")
    }

    @Test("generate --json: ids, text and every stats field")
    func generate() throws {
        let result = try Self.run(["generate", "--model", "smollm2", "--prompt", "The capital of France is",
                                   "--temperature", "0", "--max-tokens", "6", "--ignore-eos", "--json", "--threads", "2"])
        #expect(result.status == 0, "\(result.standardError)")
        let json = try #require(result.json)
        #expect(json["ids"] as? [Int] == [7042, 30, 198, 198, 504, 1797])
        #expect(json["text"] as? String == " Paris.\n\nThe United")
        let stats = try #require(json["stats"] as? [String: Any])
        for key in ["prompt_tokens", "generated_tokens", "ttft_ms", "prefill_tok_s", "decode_tok_s", "peak_rss_bytes"] {
            #expect(stats[key] is NSNumber, "stats.\(key) missing")
        }
        #expect(stats["prompt_tokens"] as? Int == 5)
        #expect(stats["generated_tokens"] as? Int == 6)
    }

    @Test("generate --chat answers through the chat template")
    func chat() throws {
        let result = try Self.run(["generate", "--model", "smollm2", "--chat", "--prompt", "What is 2+2?",
                                   "--temperature", "0", "--max-tokens", "24", "--json"])
        #expect(result.status == 0)
        let text = try #require(result.json?["text"] as? String)
        #expect(text.contains("4"), "SmolLM2 answered: \(text)")
        let stats = try #require(result.json?["stats"] as? [String: Any])
        #expect(["endOfGeneration", "maxTokens"].contains(stats["stop_reason"] as? String ?? ""))
    }

    @Test("perplexity --json: {\"ppl\", \"chunks\"}")
    func perplexity() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-ppl-\(UUID()).txt").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let text = try String(contentsOfFile: "/usr/share/common-licenses/GPL-3", encoding: .utf8)
        try String(text.prefix(4000)).write(toFile: path, atomically: true, encoding: .utf8)
        let result = try Self.run(["perplexity", "--model", "smollm2", "--file", path, "--context", "128", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let json = try #require(result.json)
        let ppl = try #require(json["ppl"] as? Double)
        #expect(ppl > 1 && ppl < 100)
        #expect((json["chunks"] as? Int ?? 0) >= 5)
    }

    @Test("pack, inspect --bench --json, verify --json, unpack: the container contract on SmolLM2")
    func container() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ember-ggz-\(UUID())").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let container = directory + "/smollm2.ggz"
        let pack = try Self.run(["pack", "--model", "smollm2", "--output", container, "--json"])
        #expect(pack.status == 0, "\(pack.standardError)")

        let bench = try Self.run(["inspect", container, "--bench", "--json", "--repetitions", "1"])
        #expect(bench.status == 0, "\(bench.standardError)")
        let json = try #require(bench.json)
        #expect(Set(json.keys) == ["original_bytes", "container_bytes", "ratio", "decode_mb_s_per_core"])
        #expect(json["original_bytes"] as? Int == 98_362_432)
        #expect((json["ratio"] as? Double ?? 1) <= 0.887)
        #expect((json["decode_mb_s_per_core"] as? Double ?? 0) > 0)

        let verify = try Self.run(["verify", container, "--json"])
        #expect(verify.status == 0)
        #expect(verify.json?["ok"] as? Bool == true)

        let unpacked = directory + "/smollm2.gguf"
        let unpack = try Self.run(["unpack", container, "--output", unpacked])
        #expect(unpack.status == 0, "\(unpack.standardError)")
        #expect(unpack.standardOutput.contains("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"))
        #expect(FileManager.default.contents(atPath: unpacked) == FileManager.default.contents(atPath: try Self.run(["models", "path", "smollm2"]).standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)))

        // A flipped byte in the middle of the file: verify fails and names the chunk and tensor.
        var bytes = try #require(FileManager.default.contents(atPath: container))
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: URL(fileURLWithPath: container))
        let damaged = try Self.run(["verify", container, "--json"])
        #expect(damaged.status == 1)
        #expect(damaged.json?["ok"] as? Bool == false)
        let errors = try #require(damaged.json?["errors"] as? [[String: Any]])
        #expect(errors.first?["chunk"] is Int)
        #expect((errors.first?["tensor"] as? String)?.hasPrefix("blk.") == true)
    }

    @Test("models path --json → {\"path\": …}")
    func modelsPath() throws {
        let result = try Self.run(["models", "path", "smollm2", "--json"])
        #expect(result.status == 0)
        let path = try #require(result.json?["path"] as? String)
        #expect(path.hasSuffix("SmolLM2-135M-Instruct.Q4_1.gguf"))
    }

    @Test("Errors are one clear line on stderr and a non-zero exit", arguments: [
        ["generate", "--model", "/nonexistent.gguf", "--prompt", "x"],
        ["generate", "--model", "smollm2"],
        ["logits", "--model", "smollm2", "--ids", "1,banana"],
        ["logits", "--model", "smollm2", "--ids", "99999999"],
        ["perplexity", "--model", "smollm2", "--file", "/nonexistent.txt"],
        ["generate", "--model", "/etc/hostname", "--prompt", "x"],
        ["sim", "--profile", "no-such-phone"],
        ["sim", "--scenario", "/etc/hostname"],
        ["sim", "--profile", "/etc/hostname"],
        ["sim", "sweep", "--profiles", "flagship-android", "--scenarios", "sustained-decode", "--policies", "teleport"],
    ])
    func errors(arguments: [String]) throws {
        let result = try Self.run(arguments)
        #expect(result.status != 0)
        #expect(result.standardOutput.isEmpty)
        let lines = result.standardError.split(separator: "\n").filter { !$0.isEmpty && !$0.hasPrefix("Usage:") && !$0.hasPrefix("  See") }
        #expect(lines.count == 1, "stderr: \(result.standardError)")
    }

    static let simulationFields = ["simulated_s", "tokens_generated", "energy_j", "joules_per_token", "battery_start_pct",
                                   "battery_end_pct", "peak_skin_c", "peak_soc_c", "seconds_at_or_above_severe", "throttled_s",
                                   "ttft_p50_s", "ttft_p95_s", "decode_tok_s_p50", "requests_completed", "requests_missed_deadline"]

    @Test("sim --json: the summary fields; --timeline CSV and --report HTML written")
    func simulate() throws {
        let directory = NSTemporaryDirectory() + "ember-sim-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let result = try Self.run(["sim", "--profile", "flagship-android", "--scenario", "sustained-decode", "--cost-model",
                                   "--json", "--timeline", directory + "/t.csv", "--report", directory + "/r.html"])
        #expect(result.status == 0, "\(result.standardError)")
        let json = try #require(result.json)
        for field in Self.simulationFields { #expect(json[field] != nil, "missing \(field)") }
        #expect(json["simulated_s"] as? Double == 600)
        let csv = try String(contentsOfFile: directory + "/t.csv", encoding: .utf8)
        let header = csv.prefix { $0 != "\n" }.split(separator: ",").map(String.init)
        for column in ["t_s", "skin_c", "soc_c", "battery_pct", "power_w", "tok_s", "thermal_status", "throttle_level"] {
            #expect(header.contains(column))
        }
        #expect(csv.split(separator: "\n").count == 601)
        let html = try String(contentsOfFile: directory + "/r.html", encoding: .utf8)
        #expect(html.contains("<svg"))
    }

    @Test("sim --real-tokens: the model writes the replies, deterministic for a seed")
    func simulateRealTokens() throws {
        let path = NSTemporaryDirectory() + "ember-scenario-\(UUID().uuidString).json"
        try """
        {"name":"two-questions","description":"","duration_s":60,"start":{"battery_pct":70,"ambient_c":25},
         "events":[{"at_s":0,"type":"chat","prompt":"Name three colours of the rainbow.","max_tokens":24,"repeat_every_s":30}]}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let arguments = ["sim", "--scenario", path, "--real-tokens", "--temperature", "0", "--threads", "1"]
        let first = try Self.run(arguments), second = try Self.run(arguments)
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput.contains("[chat 1 #1 at 0 s]"))
        #expect(first.standardOutput.contains("mode                         real-tokens"))
        let reply = first.standardOutput.components(separatedBy: "\n").first { $0.hasPrefix("[chat 1 #1") } ?? ""
        #expect(reply.count > 30, "reply: \(reply)")
        let withoutWall = { (text: String) in text.split(separator: "\n").filter { !$0.hasPrefix("wall_s") } }
        #expect(withoutWall(first.standardOutput) == withoutWall(second.standardOutput))
    }

    @Test("sim sweep: one JSON line per profile × scenario × policy")
    func sweep() throws {
        let result = try Self.run(["sim", "sweep", "--profiles", "low-end-android,flagship-android,iphone-pro,tablet",
                                   "--scenarios", "sustained-decode,day-in-the-life", "--policies", "race"])
        #expect(result.status == 0, "\(result.standardError)")
        let lines = result.standardOutput.split(separator: "\n")
        #expect(lines.count == 8)
        for line in lines {
            let json = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            for field in Self.simulationFields { #expect(json[field] != nil) }
        }
    }
}

import Foundation
import Testing

/// The conventions every `ember` command keeps: `--json` results and errors, one-line errors without
/// a usage dump, `--version`, sizes people write, bounds stated as they are, progress on a terminal.
@Suite("ember command-line conventions", .serialized)
struct CLIConventionTests {
    static func run(_ arguments: [String], input: String? = nil) throws -> CommandContractTests.Output {
        try CommandContractTests.run(arguments, input: input)
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-models").path
    static let tinyModel = fixtures + "/phi3-q8_0.gguf"

    static func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "ember-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("--version prints one version line; --help and CMD --help still print help")
    func versionAndHelp() throws {
        let version = try Self.run(["--version"])
        #expect(version.status == 0)
        let line = version.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!line.isEmpty && !line.contains("\n"))
        #expect(line.first?.isNumber == true, "version: \(line)")
        for arguments in [["--help"], ["sim", "--help"], ["pack", "rebuild", "--help"]] {
            let help = try Self.run(arguments)
            #expect(help.status == 0)
            #expect(help.standardOutput.contains("USAGE:"), "\(arguments): \(help.standardOutput)")
        }
    }

    @Test("A validation error is one line on stderr, no usage after it", arguments: [
        ["sim", "--sample-interval", "0"],
        ["sim", "--memory-budget", "lots"],
        ["unpack", "x.ggz", "--output", "y.gguf", "--threads", "0"],
        ["pack", "--model", "smollm2", "--output", "y.ggz", "--level", "40"],
        ["sim", "--no-such-option"],
        ["unpack"],
        ["bench", "--depth", "-1"],
    ])
    func oneLineErrors(arguments: [String]) throws {
        let result = try Self.run(arguments)
        #expect(result.status != 0)
        #expect(result.standardOutput.isEmpty)
        #expect(result.standardError.split(separator: "\n").count == 1, "stderr: \(result.standardError)")
        #expect(result.standardError.hasPrefix("Error: "))
        #expect(!result.standardError.contains("Usage:") && !result.standardError.contains("USAGE"))
    }

    @Test("With --json an error is {\"error\": …} on stdout too, exit non-zero", arguments: [
        ["sim", "--sample-interval", "0", "--json"],
        ["unpack", "/nonexistent.ggz", "--output", "/tmp/never-written.gguf", "--json"],
        ["pack", "rebuild", "/nonexistent.ggz", "/nonexistent.patch", "--output", "/tmp/never-written.ggz", "--json"],
        ["sim", "matrix", "--profiles", "no-such-phone", "--json"],
        ["sim", "--profile", "/etc/hostname", "--json"],
        ["unpack", "/dev/null", "--output", "/dev/null", "--json"],
    ])
    func jsonErrors(arguments: [String]) throws {
        let result = try Self.run(arguments)
        #expect(result.status != 0)
        let message = try #require(result.json?["error"] as? String, "stdout: \(result.standardOutput)")
        #expect(!message.isEmpty && !message.contains("\n"))
        #expect(result.standardError.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never-written.gguf"))
    }

    @Test("--sample-interval states its real bounds", arguments: ["0", "-1", "0.001", "3601", "nan"])
    func sampleInterval(value: String) throws {
        let result = try Self.run(["sim", "--cost-model", "--sample-interval=\(value)"])
        #expect(result.status != 0)
        #expect(result.standardError.contains("at least 0.01 s and at most 3600 s"), "\(result.standardError)")
        let edge = try Self.run(["sim", "--cost-model", "--scenario", "sustained-decode", "--model-spec", "gemma3-270m-q4_k_m",
                                 "--sample-interval", "3600", "--json"])
        #expect(edge.status == 0, "\(edge.standardError)")
    }

    @Test("--memory-budget takes TiB and TB as it takes GiB", arguments: ["1TiB", "1TB", "1T", "1024GiB", "2.5TiB"])
    func terabytes(size: String) throws {
        let result = try Self.run(["sim", "--cost-model", "--scenario", "sustained-decode", "--model-spec", "gemma3-270m-q4_k_m",
                                   "--memory-budget", size, "--json"])
        #expect(result.status == 0, "\(size): \(result.standardError)")
        #expect(result.json?["simulated_s"] as? Double == 600)
    }

    @Test("A size too large says the largest, bad syntax says what a size looks like")
    func sizeMessages() throws {
        let large = try Self.run(["sim", "--memory-budget", "99999999TiB"])
        #expect(large.status != 0)
        #expect(large.standardError.contains("more than the largest size"), "\(large.standardError)")
        let bad = try Self.run(["plan", "--model", "smollm2", "--memory-budget", "12XB"])
        #expect(bad.status != 0)
        #expect(bad.standardError.contains("'12XB' is not a size like"), "\(bad.standardError)")
    }

    @Test("unpack --json and pack rebuild --json print one JSON object")
    func unpackAndRebuildJSON() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let container = directory + "/a.ggz", other = directory + "/b.ggz", patch = directory + "/a-b.patch"
        #expect(try Self.run(["pack", "--model", Self.tinyModel, "--output", container]).status == 0)
        #expect(try Self.run(["pack", "--model", Self.fixtures + "/mistral3-q8_0.gguf", "--output", other]).status == 0)
        #expect(try Self.run(["pack", "diff", container, other, "--output", patch]).status == 0)

        let unpack = try Self.run(["unpack", container, "--output", directory + "/a.gguf", "--json"])
        #expect(unpack.status == 0, "\(unpack.standardError)")
        let unpacked = try #require(unpack.json)
        #expect(unpacked["output"] as? String == directory + "/a.gguf")
        #expect(unpacked["bytes"] as? Int == (try FileManager.default.attributesOfItem(atPath: Self.tinyModel)[.size] as? Int))
        #expect((unpacked["sha256"] as? String)?.count == 64)
        #expect(FileManager.default.contents(atPath: directory + "/a.gguf") == FileManager.default.contents(atPath: Self.tinyModel))

        let rebuild = try Self.run(["pack", "rebuild", container, patch, "--output", directory + "/rebuilt.ggz", "--json"])
        #expect(rebuild.status == 0, "\(rebuild.standardError)")
        let rebuilt = try #require(rebuild.json)
        #expect(rebuilt["verified"] as? Bool == true)
        #expect(rebuilt["container_bytes"] as? Int == (try FileManager.default.attributesOfItem(atPath: other)[.size] as? Int))
        #expect(FileManager.default.contents(atPath: directory + "/rebuilt.ggz") == FileManager.default.contents(atPath: other))
    }

    @Test("sim matrix --json: one cell per scenario × profile, race and adaptive summaries and the checks")
    func matrixJSON() throws {
        let result = try Self.run(["sim", "matrix", "--profiles", "flagship-android,low-end-android",
                                   "--scenarios", "sustained-decode", "--model-spec", "gemma3-270m-q4_k_m", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let json = try #require(result.json)
        #expect(json["model"] as? String == "gemma3-270m-q4_k_m")
        let cells = try #require(json["cells"] as? [[String: Any]])
        #expect(cells.count == 2)
        #expect(cells.map { $0["profile"] as? String } == ["flagship-android", "low-end-android"])
        for cell in cells {
            #expect(cell["scenario"] as? String == "sustained-decode")
            #expect((cell["race"] as? [String: Any])?["tokens_generated"] is Int)
            #expect((cell["adaptive"] as? [String: Any])?["tokens_generated"] is Int)
            let checks = try #require(cell["checks"] as? [String: Any])
            #expect(checks["pass"] is Bool)
            #expect(checks["failures"] is [String])
        }
        // The Markdown table still prints without --json.
        let table = try Self.run(["sim", "matrix", "--profiles", "flagship-android", "--scenarios", "sustained-decode",
                                  "--model-spec", "gemma3-270m-q4_k_m"])
        #expect(table.standardOutput.contains("| sustained-decode | flagship-android |"))
    }

    /// `command` run under a pseudo-terminal (`script`), standard output discarded: what it draws on stderr.
    static func terminalStandardError(_ arguments: [String]) throws -> String {
        let quoted = ([CommandContractTests.executable.path] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/script")
        process.arguments = ["-qec", quoted.joined(separator: " ") + " >/dev/null", "/dev/null"]
        let output = Pipe()
        process.standardOutput = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(arguments): \(String(decoding: data, as: UTF8.self))")
        return String(decoding: data, as: UTF8.self)
    }

    @Test("bench, sim --real-tokens and eval summarize --json draw progress on a terminal stderr, nothing when it is a pipe")
    func progress() throws {
        try #require(FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "needs script(1) for a pseudo-terminal")
        let bench = ["bench", "--model", Self.tinyModel, "--prompt-tokens", "8", "--gen-tokens", "4", "--repetitions", "2", "--threads", "1"]
        #expect(try Self.terminalStandardError(bench).contains("benchmarking ["))
        #expect(try Self.run(bench).standardError.isEmpty)

        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let scenario = directory + "/chat.json"
        try """
        {"name":"chat","description":"","duration_s":60,"start":{"battery_pct":70,"ambient_c":25},
         "events":[{"at_s":0,"type":"chat","prompt":"Name three colours.","max_tokens":8,"repeat_every_s":30}]}
        """.write(toFile: scenario, atomically: true, encoding: .utf8)
        let simulation = ["sim", "--scenario", scenario, "--model", Self.tinyModel, "--real-tokens", "--threads", "1"]
        #expect(try Self.terminalStandardError(simulation).contains("simulating ["))
        #expect(try Self.run(simulation).standardError.isEmpty)

        let dataset = URL(fileURLWithPath: Self.fixtures).deletingLastPathComponent().appendingPathComponent("notes-dataset").path
        let evaluation = ["eval", "summarize", "--dataset", dataset, "--model", Self.tinyModel, "--limit", "2", "--json", "--threads", "1"]
        #expect(try Self.terminalStandardError(evaluation).contains("summarizing ["))
        #expect(try Self.run(evaluation).standardError.isEmpty)
    }

    @Test("bench --depth times generation over a filled context, as llama-bench's --n-depth, and says so")
    func benchDepth() throws {
        let arguments = ["bench", "--model", Self.tinyModel, "--prompt-tokens", "0", "--gen-tokens", "3", "--repetitions", "1",
                         "--threads", "1", "--depth", "20", "--json"]
        let result = try Self.run(arguments)
        #expect(result.status == 0, "\(result.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.standardOutput.utf8)) as? [String: Any])
        #expect(object["depth"] as? Int == 20)
        let generation = try #require(object["tg_tok_s"] as? [String: Any])
        #expect((generation["mean"] as? Double ?? 0) > 0)
        let text = try Self.run(Array(arguments.dropLast()))
        #expect(text.standardOutput.contains("tg3 @ d20: "), "\(text.standardOutput)")
    }
}

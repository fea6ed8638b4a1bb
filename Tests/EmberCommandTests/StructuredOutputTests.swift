import Foundation
import Testing

/// `ember generate --json-schema | --regex | --choices`, `ember notes extract` and `classify` on the
/// real SmolLM2 model (they fail, not skip, without it): the output always parses and validates,
/// and bad formats are refused in one line before any model runs.
@Suite("Structured output from the command line", .serialized)
struct StructuredOutputTests {
    static func run(_ arguments: [String], input: String? = nil) throws -> CommandContractTests.Output {
        try CommandContractTests.run(arguments, input: input)
    }

    static let schemas = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/schemas").path

    static func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "ember-structured-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    static func write(_ text: String, in directory: String, name: String) throws -> String {
        let path = directory + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func object(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "not a JSON object: \(text)")
    }

    @Test("generate --json-schema gives a document valid against the schema, ending when it is complete")
    func jsonSchema() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let schema = try Self.write(#"""
            {"type":"object","properties":{"city":{"type":"string","maxLength":24},"population":{"type":"integer","minimum":0},
             "capital":{"type":"boolean"}},"required":["city","population","capital"],"additionalProperties":false}
            """#, in: directory, name: "city.json")
        let result = try Self.run(["generate", "--model", "smollm2", "--chat", "--prompt", "Describe Paris as JSON.",
                                   "--json-schema", schema, "--temperature", "0", "--max-tokens", "60", "--json"])
        #expect(result.status == 0, "\(result.standardError)")
        let output = try Self.object(result.standardOutput)
        let text = try #require(output["text"] as? String)
        let document = try Self.object(text)
        let city = try #require(document["city"] as? String)
        #expect(city.unicodeScalars.count <= 24)
        #expect((document["population"] as? Int).map { $0 >= 0 } == true, "\(text)")
        #expect(document["capital"] is Bool, "\(text)")
        let stats = try #require(output["stats"] as? [String: Any])
        #expect(stats["stop_reason"] as? String == "endOfGeneration")
        #expect(stats["mask_us_per_token"] is Double || stats["mask_us_per_token"] is Int)
        #expect(stats["grammar_compile_ms"] != nil)
    }

    @Test("generate --choices and --regex give one of the labels, a match of the pattern")
    func choicesAndRegex() throws {
        let labels = ["meeting", "todo", "idea"]
        let choice = try Self.run(["generate", "--model", "smollm2", "--chat", "--prompt", "Classify: buy milk, eggs and bread.",
                                   "--choices", labels.joined(separator: ","), "--temperature", "0", "--json"])
        #expect(choice.status == 0, "\(choice.standardError)")
        #expect(labels.contains(try Self.object(choice.standardOutput)["text"] as? String ?? ""), "\(choice.standardOutput)")
        let pattern = #"\d{4}-\d{2}-\d{2}"#
        let date = try Self.run(["generate", "--model", "smollm2", "--chat", "--prompt", "When did the Berlin wall fall? Give the date.",
                                 "--regex", pattern, "--temperature", "0.7", "--seed", "3", "--json"])
        #expect(date.status == 0, "\(date.standardError)")
        let text = try Self.object(date.standardOutput)["text"] as? String ?? ""
        #expect(text.range(of: "^" + pattern + "$", options: .regularExpression) != nil, "\(text)")
    }

    @Test("A token limit too small for the schema is refused; a tight one is closed in time with valid JSON")
    func tokenLimit() throws {
        let schema = Self.schemas + "/events.json"
        let tooSmall = try Self.run(["generate", "--model", "smollm2", "--prompt", "Events:", "--json-schema", schema,
                                     "--max-tokens", "2"])
        #expect(tooSmall.status != 0)
        #expect(tooSmall.standardError.contains("token limit is 2"), "\(tooSmall.standardError)")
        #expect(tooSmall.standardError.split(separator: "\n").count == 1, "\(tooSmall.standardError)")
        let tight = try Self.run(["generate", "--model", "smollm2", "--chat", "--prompt",
                                  "List three events in 2027 with long titles and places as JSON.", "--json-schema", schema,
                                  "--temperature", "0", "--max-tokens", "40", "--json"])
        #expect(tight.status == 0, "\(tight.standardError)")
        let text = try Self.object(tight.standardOutput)["text"] as? String ?? ""
        #expect((try? Self.object(text))?["events"] is [Any], "not a complete events document: \(text)")
    }

    @Test("notes extract stores JSON valid against a shipped schema, stale once the body changes; classify stores a label")
    func notesExtractAndClassify() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = directory + "/notes.db"
        let add = try Self.run(["notes", "--db", database, "add", "--title", "Team sync", "--body",
                                "Alice sends the Q3 budget by 2026-12-10. Bob books the room for Friday."])
        #expect(add.status == 0, "\(add.standardError)")
        let extract = try Self.run(["notes", "--db", database, "extract", "1", "--schema", Self.schemas + "/action-items.json",
                                    "--max-tokens", "96", "--json"])
        #expect(extract.status == 0, "\(extract.standardError)")
        let stored = try Self.object(extract.standardOutput)
        #expect(stored["kind"] as? String == "action-items")
        #expect(stored["stale"] as? Bool == false)
        let value = try #require(stored["value"] as? [String: Any])
        let items = try #require(value["items"] as? [[String: Any]])
        for item in items {
            #expect(item["task"] is String)
            if let due = item["due"] as? String { #expect(due.range(of: #"^\d{4}-\d{2}-\d{2}$"#, options: .regularExpression) != nil) }
        }
        let classify = try Self.run(["notes", "--db", database, "classify", "1", "--labels", "meeting,todo,idea", "--json"])
        #expect(classify.status == 0, "\(classify.standardError)")
        #expect(["meeting", "todo", "idea"].contains(try Self.object(classify.standardOutput)["value"] as? String ?? ""))
        _ = try Self.run(["notes", "--db", database, "edit", "1", "--body", "Changed."])
        let show = try Self.object(try Self.run(["notes", "--db", database, "show", "1", "--json"]).standardOutput)
        let extractions = try #require(show["extractions"] as? [[String: Any]])
        #expect(extractions.count == 2)
        #expect(extractions.allSatisfy { $0["stale"] as? Bool == true })
    }

    @Test("Bad formats are refused in one line before the model runs", arguments: [
        (["--json-schema", "SCHEMA:{\"anyOf\":[{\"type\":\"string\"}]}"], "unsupported JSON Schema feature: 'anyOf'"),
        (["--json-schema", "SCHEMA:{\"type\":\"string\",\"pattern\":\"(a\"}"], "unclosed '('"),
        (["--json-schema", "/nonexistent/schema.json"], "cannot read the JSON Schema"),
        (["--regex", "a{3,1}"], "maximum below its minimum"),
        (["--regex", "(?<=a)b"], "lookaround"),
        (["--choices", "a,,b"], "comma-separated labels"),
        (["--regex", "a", "--choices", "a,b"], "at most one of"),
    ])
    func badFormats(options: [String], message: String) throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let arguments = try options.map { option in
            option.hasPrefix("SCHEMA:") ? try Self.write(String(option.dropFirst(7)), in: directory, name: "s.json") : option
        }
        let result = try Self.run(["generate", "--model", "/nonexistent/model.gguf", "--prompt", "x"] + arguments)
        #expect(result.status != 0)
        #expect(result.standardOutput.isEmpty)
        #expect(result.standardError.contains(message), "stderr: \(result.standardError)")
        #expect(result.standardError.split(separator: "\n").count == 1, "stderr: \(result.standardError)")
    }
    @Test("eval extract reports validity, parse rate, field F1 per schema both ways, and the grammar's cost")
    func evalExtract() throws {
        let dataset = URL(fileURLWithPath: Self.schemas).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/Fixtures/notes-dataset").path
        let result = try Self.run(["eval", "extract", "--dataset", dataset, "--schemas", Self.schemas, "--model", "smollm2",
                                   "--limit", "1", "--only", "note-kind", "expenses", "--max-tokens", "96", "--json"])
        try #require(result.status == 0, "\(result.standardError)")
        let report = try Self.object(result.standardOutput)
        let schemas = try #require(report["schemas"] as? [String: Any])
        #expect(Set(schemas.keys) == ["note-kind", "expenses"])
        for (name, value) in schemas {
            let entry = try #require(value as? [String: Any])
            let constrained = try #require(entry["constrained"] as? [String: Any], "\(name)")
            let free = try #require(entry["unconstrained"] as? [String: Any], "\(name)")
            // Every constrained extraction is a valid document.
            #expect(constrained["validity"] as? Double == 1 || constrained["validity"] as? Int == 1, "\(name): \(constrained)")
            for key in ["precision", "recall", "f1", "parse_rate", "decode_tok_s"] {
                #expect(constrained[key] is Double || constrained[key] is Int, "\(name) constrained \(key)")
                #expect(free[key] is Double || free[key] is Int, "\(name) unconstrained \(key)")
            }
            #expect((entry["compile_ms"] as? Double ?? 0) > 0, "\(name) compile time")
        }
        let steps = try #require(report["mask_steps"] as? Int)
        let checked = try #require(report["checked_steps"] as? Int)
        #expect(steps > 0 && checked <= steps)
        #expect((report["mask_us_per_token"] as? Double ?? 0) > 0)
        #expect((report["decode_ratio"] as? Double ?? 0) > 0)

        // A dataset without expected files is refused in one line.
        let empty = try Self.scratch()
        let refused = try Self.run(["eval", "extract", "--dataset", empty, "--schemas", Self.schemas, "--model", "smollm2"])
        #expect(refused.status != 0)
        #expect(refused.standardError.contains("holds no NN-slug.expected.json files"), "\(refused.standardError)")
        #expect(refused.standardError.trimmingCharacters(in: .newlines).split(separator: "\n").count == 1, "\(refused.standardError)")
    }

    @Test("eval extract --no-baseline reports the constrained run alone: no comparison with a baseline that did not run")
    func evalExtractWithoutBaseline() throws {
        let dataset = URL(fileURLWithPath: Self.schemas).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Tests/Fixtures/notes-dataset").path
        let arguments = ["eval", "extract", "--dataset", dataset, "--schemas", Self.schemas, "--model", "smollm2",
                         "--limit", "1", "--only", "note-kind", "--max-tokens", "32", "--no-baseline"]
        let text = try Self.run(arguments)
        try #require(text.status == 0, "\(text.standardError)")
        // Before, the summary read "F1 0.xxx vs 1.000": an empty baseline scored as perfect.
        #expect(!text.standardOutput.contains(" vs "), "\(text.standardOutput)")
        #expect(!text.standardOutput.contains("unconstrained "), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("no baseline run"), "\(text.standardOutput)")
        #expect(text.standardOutput.contains("before grounding"), "\(text.standardOutput)")
        let json = try Self.run(arguments + ["--json"])
        try #require(json.status == 0, "\(json.standardError)")
        let report = try Self.object(json.standardOutput)
        #expect(report["unconstrained"] is NSNull, "\(json.standardOutput)")
        let schemas = try #require(report["schemas"] as? [String: Any])
        let entry = try #require(schemas["note-kind"] as? [String: Any])
        #expect(entry["unconstrained"] is NSNull)
        #expect(entry["constrained_ungrounded"] is [String: Any])
    }
}

import ArgumentParser
import Ember
import EmberCore
import EmberLM
import EmberModelCatalog
import EmberNotes
import Foundation

/// `ember eval extract`: structured extraction on notes with hand-written expected JSON — validity,
/// field-level precision/recall/F1 per schema, constrained against the same model unconstrained,
/// and what the grammar costs (decode speed with and without it, mask time, compile time).
struct EvalExtractCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "extract",
        abstract: "Evaluate structured extraction: validity, field F1 per schema, constrained vs unconstrained, grammar cost.",
        discussion: """
            The dataset holds NN-slug.md notes and, for those evaluated, NN-slug.expected.json: an object whose \
            keys name schemas in --schemas (action-items, events, contacts, expenses: the expected document; \
            note-kind: the expected label). Each note is extracted once per schema with the grammar and, unless \
            --no-baseline, once with the same prompt and no grammar (free text: its parse rate is the baseline). \
            Fields are compared leaf by leaf (nulls skipped); strings match when their words overlap with an F1 \
            of at least 0.5, numbers when equal.
            """)

    @Option(name: .long, help: "A directory of NN-slug.md notes with NN-slug.expected.json files.")
    var dataset: String

    @Option(name: .long, help: "The directory of the JSON Schema files the expected files name.")
    var schemas: String = "docs/schemas"

    @Option(name: .long, help: "A model alias (smollm2, gemma3) or GGUF path.")
    var model: String = "smollm2"

    @Option(name: .long, help: "Worker threads.")
    var threads: Int?

    @Option(name: .long, help: "Longest output, in tokens.")
    var maxTokens: Int = 256

    @Option(name: .long, help: "Evaluate only the first N notes.")
    var limit: Int?

    @Option(name: .long, parsing: .upToNextOption, help: "Only these schemas (names in --schemas).")
    var only: [String] = []

    @Flag(name: .long, help: "Skip the unconstrained baseline.")
    var noBaseline = false

    @Flag(name: .long, help: "Print each constrained document on stderr, as the model wrote it and grounded.")
    var showDocuments = false

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard (1...4096).contains(maxTokens) else { throw ValidationError("--max-tokens must be between 1 and 4096, not \(maxTokens).") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit).") }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, not \(threads).") }
    }

    /// One note with its expected documents by schema name.
    struct Example {
        var name: String
        var title: String
        var body: String
        var expected: [(String, JSONValue)]
    }

    /// Totals of one schema in one mode.
    struct Tally {
        var runs = 0
        var valid = 0
        var parsed = 0
        var failures = 0
        var truePositives = 0
        var predicted = 0
        var expected = 0
        var tokens = 0
        var decodeSeconds = 0.0

        var precision: Double { predicted == 0 ? (expected == 0 ? 1 : 0) : Double(truePositives) / Double(predicted) }
        var recall: Double { expected == 0 ? (predicted == 0 ? 1 : 0) : Double(truePositives) / Double(expected) }
        var f1: Double { precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall) }
        var tokensPerSecond: Double { decodeSeconds > 0 ? Double(tokens) / decodeSeconds : 0 }

        var json: String {
            "{\"runs\":\(runs),\"valid\":\(valid),\"validity\":\(JSONText.number(rate(valid))),\"parse_rate\":\(JSONText.number(rate(parsed))),"
                + "\"errors\":\(failures),\"precision\":\(JSONText.number(precision)),\"recall\":\(JSONText.number(recall)),"
                + "\"f1\":\(JSONText.number(f1)),\"decode_tok_s\":\(JSONText.number(tokensPerSecond)),\"tokens\":\(tokens)}"
        }

        func rate(_ count: Int) -> Double { runs == 0 ? 0 : Double(count) / Double(runs) }
    }

    func run() async throws {
        let examples = try loadExamples()
        let languageModel = try LanguageModel(path: ModelCatalog.resolve(model))
        let extractor = NoteExtractor(model: languageModel, threads: threads ?? defaultThreadCount(), maxTokens: maxTokens)
        var schemaTexts: [String: String] = [:]
        var compileMilliseconds: [String: Double] = [:]
        for name in Set(examples.flatMap { $0.expected.map(\.0) }).sorted() {
            let path = (schemas as NSString).appendingPathComponent(name + ".json")
            let text = try OutputFormatOptions.readSchema(path)
            // A fresh compile, timed (the extractor's are cached in the model).
            do { compileMilliseconds[name] = try Grammar(.jsonSchema(text)).compileMilliseconds } catch {
                throw ValidationError("\(path): \(error.message)")
            }
            schemaTexts[name] = text
        }
        // `ungrounded`: the constrained documents as the model wrote them, before grounding (same runs).
        var constrained: [String: Tally] = [:], free: [String: Tally] = [:], ungrounded: [String: Tally] = [:]
        let total = examples.reduce(0) { $0 + $1.expected.count }
        var done = 0
        for example in examples {
            for (name, expected) in example.expected {
                done += 1
                if !json { printError("[\(done)/\(total)] \(example.name) \(name)") }
                let schema = schemaTexts[name]!
                let grammar = try Grammar(.jsonSchema(schema))
                for isConstrained in noBaseline ? [true] : [true, false] {
                    var tally = (isConstrained ? constrained : free)[name] ?? Tally()
                    tally.runs += 1
                    tally.expected += Self.fields(expected).count
                    do {
                        let result = try await extractor.extract(title: example.title, text: example.body, schema: schema,
                                                                 constrained: isConstrained)
                        tally.tokens += max(0, result.statistics.generatedTokens - 1)
                        if result.statistics.decodeTokensPerSecond > 0 {
                            tally.decodeSeconds += Double(max(0, result.statistics.generatedTokens - 1)) / result.statistics.decodeTokensPerSecond
                        }
                        let document = isConstrained ? result.text : Self.firstJSONObject(result.text)
                        Self.score(document, expected: expected, grammar: grammar, into: &tally)
                        if isConstrained {
                            var raw = ungrounded[name] ?? Tally()
                            raw.runs += 1
                            raw.expected += Self.fields(expected).count
                            Self.score(result.ungroundedText, expected: expected, grammar: grammar, into: &raw)
                            raw.tokens = tally.tokens
                            raw.decodeSeconds = tally.decodeSeconds
                            ungrounded[name] = raw
                            if showDocuments {
                                printError("  model:    \(result.ungroundedText.replacingOccurrences(of: "\n", with: "⏎"))")
                                printError("  grounded: \(result.text)")
                            }
                        }
                    } catch {
                        tally.failures += 1
                        if isConstrained { ungrounded[name, default: Tally()].runs += 1; ungrounded[name, default: Tally()].failures += 1 }
                        if !json { printError("  \(isConstrained ? "constrained" : "unconstrained"): \(error)") }
                    }
                    if isConstrained { constrained[name] = tally } else { free[name] = tally }
                }
            }
        }
        // The grammar's time per sampled token: checking the leading tokens, and masks where they do not settle it.
        var grammarNanoseconds: UInt64 = 0, maskSteps = 0, walks = 0, checkedSteps = 0, walkNanoseconds: UInt64 = 0
        for text in schemaTexts.values {
            let statistics = try languageModel.constraint(for: .jsonSchema(text)).maskStatistics
            grammarNanoseconds += statistics.stepNanoseconds
            maskSteps += statistics.steps
            walks += statistics.walks
            walkNanoseconds += statistics.walkNanoseconds
            checkedSteps += statistics.checkedSteps
        }
        let maskMicroseconds = maskSteps > 0 ? Double(grammarNanoseconds) / Double(maskSteps) / 1000 : 0
        let walkMilliseconds = walks > 0 ? Double(walkNanoseconds) / Double(walks) / 1e6 : 0
        let names = schemaTexts.keys.sorted()
        let all = { (tallies: [String: Tally]) -> Tally in
            tallies.values.reduce(into: Tally()) { sum, tally in
                sum.runs += tally.runs; sum.valid += tally.valid; sum.parsed += tally.parsed; sum.failures += tally.failures
                sum.truePositives += tally.truePositives; sum.predicted += tally.predicted; sum.expected += tally.expected
                sum.tokens += tally.tokens; sum.decodeSeconds += tally.decodeSeconds
            }
        }
        let constrainedAll = all(constrained), freeAll = all(free), ungroundedAll = all(ungrounded)
        let ratio = freeAll.tokensPerSecond > 0 ? constrainedAll.tokensPerSecond / freeAll.tokensPerSecond : 0
        if json {
            let perSchema = names.map { name in
                "\(JSONText.string(name)):{\"constrained\":\((constrained[name] ?? Tally()).json),"
                    + "\"unconstrained\":\(free[name].map(\.json) ?? "null"),"
                    + "\"constrained_ungrounded\":\((ungrounded[name] ?? Tally()).json),\"compile_ms\":\(JSONText.number(compileMilliseconds[name] ?? 0))}"
            }.joined(separator: ",")
            print("{\"model\":\(JSONText.string(model)),\"notes\":\(examples.count),\"schemas\":{\(perSchema)},"
                  + "\"constrained\":\(constrainedAll.json),\"unconstrained\":\(noBaseline ? "null" : freeAll.json),"
                  + "\"constrained_ungrounded\":\(ungroundedAll.json),"
                  + "\"decode_ratio\":\(JSONText.number(ratio)),\"mask_us_per_token\":\(JSONText.number(maskMicroseconds)),"
                  + "\"mask_walks\":\(walks),\"mask_steps\":\(maskSteps),\"checked_steps\":\(checkedSteps),"
                  + "\"walk_ms\":\(JSONText.number(walkMilliseconds))}")
            return
        }
        print("model \(model), \(examples.count) notes")
        print("schema          mode           valid   parse   P      R      F1     tok/s   compile")
        for name in names {
            for (mode, tally) in [("constrained", constrained[name]), ("ungrounded", ungrounded[name]), ("unconstrained", free[name])] {
                guard let tally else { continue }
                // Padded here: `%-15@` does not pad on Linux.
                let padded = { (text: String, width: Int) in text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
                print(padded(name, 15) + " " + padded(mode, 14) + String(format: " %5.1f%%  %5.1f%%  %.3f  %.3f  %.3f  %6.2f  %@",
                             tally.rate(tally.valid) * 100, tally.rate(tally.parsed) * 100,
                             tally.precision, tally.recall, tally.f1, tally.tokensPerSecond,
                             mode == "constrained" ? String(format: "%.2f ms", compileMilliseconds[name] ?? 0) as NSString : "" as NSString))
            }
        }
        print(Self.summary(constrained: constrainedAll, ungrounded: ungroundedAll, free: noBaseline ? nil : freeAll,
                           ratio: ratio, maskMicroseconds: maskMicroseconds))
        print(String(format: "  %d steps: %d settled by checking the leading tokens, %d masks walked (%.2f ms each)",
                     maskSteps, checkedSteps, walks, walkMilliseconds))
    }

    /// The closing lines: validity and F1 over every schema, and what the grammar cost. Without a
    /// baseline (`free` nil) nothing is compared with it: no parse rate, F1 or speed of a run that did not happen.
    static func summary(constrained: Tally, ungrounded: Tally, free: Tally?, ratio: Double, maskMicroseconds: Double) -> String {
        guard let free else {
            return String(format: "all: validity %.1f%% constrained; F1 %.3f (%.3f before grounding)\n", constrained.rate(constrained.valid) * 100,
                          constrained.f1, ungrounded.f1)
                + String(format: "decode %.2f tok/s with the grammar (no baseline run); grammar %.1f µs per token",
                         constrained.tokensPerSecond, maskMicroseconds)
        }
        return String(format: "all: validity %.1f%% constrained, parse rate %.1f%% unconstrained; F1 %.3f vs %.3f (%.3f before grounding)\n",
                      constrained.rate(constrained.valid) * 100, free.rate(free.parsed) * 100, constrained.f1, free.f1, ungrounded.f1)
            + String(format: "decode %.2f tok/s with the grammar, %.2f without (%.0f%%); grammar %.1f µs per token",
                     constrained.tokensPerSecond, free.tokensPerSecond, ratio * 100, maskMicroseconds)
    }

    /// Scores one document (nil: none found) against the expected one.
    static func score(_ document: String?, expected: JSONValue, grammar: Grammar, into tally: inout Tally) {
        guard let document, let value = try? JSONValue.parse(document) else { return }
        tally.parsed += 1
        if grammar.accepts(compact(value)) { tally.valid += 1 }
        let predicted = fields(value)
        tally.predicted += predicted.count
        tally.truePositives += matches(predicted, fields(expected))
    }

    private func loadExamples() throws -> [Example] {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: dataset) } catch {
            throw ValidationError("cannot list the dataset directory \(dataset)")
        }
        var examples: [Example] = []
        for file in names.filter({ $0.hasSuffix(".expected.json") }).sorted() {
            let name = String(file.dropLast(".expected.json".count))
            let notePath = (dataset as NSString).appendingPathComponent(name + ".md")
            let expectedPath = (dataset as NSString).appendingPathComponent(file)
            let noteBytes = try BoundedRead.file(atPath: notePath, limit: 1 << 20)
            let draft = try MarkdownNoteFile.parse(String(decoding: noteBytes, as: UTF8.self), source: notePath)
            let expectedText = String(decoding: try BoundedRead.file(atPath: expectedPath, limit: 1 << 20), as: UTF8.self)
            let value: JSONValue
            do { value = try JSONValue.parse(expectedText) } catch { throw ValidationError("\(expectedPath): \(error.message)") }
            guard case .object(let members) = value else { throw ValidationError("\(expectedPath) must hold a JSON object") }
            let expected = members.compactMap { name, value -> (String, JSONValue)? in
                guard only.isEmpty || only.contains(name) else { return nil }
                // A label stands for the classifier's document.
                if case .string(let label) = value { return (name, .object([("kind", .string(label))])) }
                return (name, value)
            }
            examples.append(Example(name: name, title: draft.title, body: draft.body, expected: expected))
            if let limit, examples.count >= limit { break }
        }
        guard !examples.isEmpty else { throw ValidationError("\(dataset) holds no NN-slug.expected.json files") }
        return examples
    }

    /// The text from the first `{` to its matching `}`: the extractor's reading of free text.
    static func firstJSONObject(_ text: String) -> String? { NoteExtractor.firstJSONObject(text) }

    /// A value as compact JSON in its own key order.
    static func compact(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(_, let text): return text
        case .string(let text): return JSONText.string(text)
        case .array(let items): return "[" + items.map(compact).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { JSONText.string($0.0) + ":" + compact($0.1) }.joined(separator: ",") + "}"
        }
    }

    /// A leaf of a document: its key path (array indices dropped) and its value; nulls left out.
    struct Field: Equatable {
        var path: String
        var value: JSONValue
    }

    static func fields(_ value: JSONValue, path: String = "") -> [Field] {
        switch value {
        case .null: return []
        case .array(let items): return items.flatMap { fields($0, path: path + "[]") }
        case .object(let members): return members.flatMap { fields($0.1, path: path + "." + $0.0) }
        default: return [Field(path: path, value: value)]
        }
    }

    /// Predicted fields matched one to one with expected ones.
    static func matches(_ predicted: [Field], _ expected: [Field]) -> Int {
        var unmatched = expected
        var count = 0
        for field in predicted {
            if let index = unmatched.firstIndex(where: { $0.path == field.path && same($0.value, field.value) }) {
                unmatched.remove(at: index)
                count += 1
            }
        }
        return count
    }

    static func same(_ left: JSONValue, _ right: JSONValue) -> Bool {
        switch (left, right) {
        case (.number(let a, _), .number(let b, _)): return abs(a - b) < 1e-6
        case (.string(let a), .string(let b)):
            let first = WordTokens.of(a), second = WordTokens.of(b)
            if first == second { return true }
            guard !first.isEmpty, !second.isEmpty else { return false }
            var pool = second
            var shared = 0
            for word in first { if let index = pool.firstIndex(of: word) { pool.remove(at: index); shared += 1 } }
            let precision = Double(shared) / Double(first.count), recall = Double(shared) / Double(second.count)
            return precision + recall > 0 && 2 * precision * recall / (precision + recall) >= 0.5
        default: return left == right
        }
    }
}

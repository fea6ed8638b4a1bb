import ArgumentParser
import Ember
import EmberModelCatalog
import EmberCore
import EmberGGUF
import EmberLM
import EmberStorage
import Foundation

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A model alias (smollm2, gemma3) or the path of a GGUF file.")
    var model: String = "smollm2"

    @Option(name: .long, help: "Worker threads for inference (default: all cores).")
    var threads: Int?

    @Option(name: .long, help: "Memory budget for the whole process (e.g. 160MiB, 1.5GiB): planned before loading, then fitted or refused.")
    var memoryBudget: String?

    @Flag(name: .long, help: "Stream weights from the file layer by layer instead of keeping them resident.")
    var streamWeights = false

    @Option(name: .long, help: "KV cache type: f16, q8_0 or q4_0 (default f16; a budget may choose a quantized one).")
    var kvType: KeyValueType?

    func validate() throws {
        if let threads, threads < 1 || threads > 256 {
            throw ValidationError("--threads must be between 1 and 256, not \(threads).")
        }
        if let memoryBudget, let problem = ByteCount.problem(parsing: memoryBudget) {
            throw ValidationError("--memory-budget: \(problem).")
        }
    }

    var threadCount: Int { threads ?? defaultThreadCount() }

    /// Whether weights are rearranged for the fast kernels: `EMBER_INTERLEAVE=0` keeps the file's
    /// layout (for comparing kernels). Read here, in the CLI only; the library takes it as an option.
    static var interleavesWeights: Bool { ProcessInfo.processInfo.environment["EMBER_INTERLEAVE"] != "0" }

    var budgetBytes: Int? { memoryBudget.flatMap(ByteCount.parse) }

    /// The engine configuration these options describe, for `context` positions and `batchSize`-token
    /// steps (a budget may shorten the context only when `contextAdjustable`).
    func engineConfiguration(context: Int, batchSize: Int = 512, contextAdjustable: Bool) throws -> EngineConfiguration {
        var configuration = EngineConfiguration(model: .file(path: try ModelCatalog.resolve(model)), memoryBudgetBytes: budgetBytes,
                                                contextLength: context, adjustsContext: contextAdjustable, threadCount: threadCount,
                                                keyValueType: kvType, weightStreaming: streamWeights ? .always : .never, batchSize: batchSize)
        configuration.interleavesWeights = Self.interleavesWeights
        return configuration
    }

    /// Resolves the alias or path and loads the model (streaming weights when asked). A compressed
    /// container (`ember pack`) is decoded into memory, every chunk checked.
    func load() throws -> LanguageModel {
        let configuration = try engineConfiguration(context: 2048, contextAdjustable: true)
        let opened = try ModelLoader.open(configuration)
        if opened.isContainer, streamWeights {
            throw ValidationError("--stream-weights reads from a GGUF file; unpack the container first (ember unpack).")
        }
        return try LanguageModel(file: opened.file, path: opened.name, options: LoadOptions(interleave: Self.interleavesWeights, streamWeights: streamWeights))
    }

    /// Plans memory for `context` positions and `batchSize`-token steps; with a budget, fits the
    /// plan (shorter context when `contextAdjustable`, smaller steps, streamed weights when
    /// `--stream-weights`) or refuses before loading. Loads the model as planned. The planning is
    /// the library's (`ModelLoader`, as `Engine` does it); this only reports a changed plan.
    func loadWithinBudget(context: Int, batchSize: Int = 512, contextAdjustable: Bool) throws -> (LanguageModel, MemoryPlan) {
        var configuration = try engineConfiguration(context: context, batchSize: batchSize, contextAdjustable: contextAdjustable)
        let opened = try ModelLoader.open(configuration)
        if opened.isContainer, streamWeights {
            throw ValidationError("--stream-weights reads from a GGUF file; unpack the container first (ember unpack).")
        }
        // The caller says when the context was shortened (after a run, so an error stays one line).
        let context = try boundedContext(context, file: opened.file, adjustable: contextAdjustable, announce: false)
        configuration.contextLength = context
        let plan = try ModelLoader.plan(opened, configuration)
        if let budget = budgetBytes,
           plan.context != context || plan.batchSize != batchSize || plan.keyValueType != (kvType ?? .f16) {
            printError("memory plan: context \(plan.context) (asked \(context)), \(plan.keyValueType.rawValue) KV cache, \(plan.batchSize)-token steps\(plan.streamWeights ? ", streamed weights" : ""): \(ByteCount.format(plan.totalBytes)) within \(ByteCount.format(budget))")
        }
        return (try ModelLoader.load(opened, plan: plan, interleave: configuration.interleavesWeights), plan)
    }
}

/// `requested` positions, or the model's trained context when that is shorter: `plan` and
/// `generate` then agree on the context (with `announce`, a line on stderr says so). Where the
/// context cannot be adjusted (perplexity chunks), a longer one is refused.
func boundedContext(_ requested: Int, file: GGUFFile, adjustable: Bool, announce: Bool = true) throws -> Int {
    let configuration = try ModelConfiguration(gguf: file)
    let trained = max(configuration.trainedContextLength, 16)
    guard requested > trained else { return requested }
    guard adjustable else {
        throw ValidationError("--context \(requested) is beyond the model's trained context of \(trained) tokens.")
    }
    if announce { printError(contextNote(requested, trained: trained)) }
    return trained
}

/// The line saying that `requested` positions became the model's `trained` context.
func contextNote(_ requested: Int, trained: Int) -> String {
    "note: --context \(requested) is beyond the model's trained context; using \(trained) tokens"
}

/// Whether the raw bytes of the command-line argument that became `value` (alone, or after
/// `--option=`) are valid UTF-8: Swift repairs invalid bytes into U+FFFD before the parser sees them.
func argumentIsValidUTF8(_ value: String, option: String) -> Bool {
    guard value.unicodeScalars.contains("\u{FFFD}") else { return true }
    for index in 0..<Int(CommandLine.argc) {
        guard let raw = CommandLine.unsafeArgv[index] else { continue }
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(raw).assumingMemoryBound(to: UInt8.self), count: strlen(raw))
        let repaired = String(decoding: bytes, as: UTF8.self)
        guard repaired == value || repaired == option + "=" + value else { continue }
        if String(validating: bytes, as: UTF8.self) == nil { return false }
    }
    return true
}

func defaultThreadCount() -> Int {
    max(1, ProcessInfo.processInfo.activeProcessorCount)
}

import Foundation

/// Parses `1,2,3` into token ids.
func parseTokenIDs(_ text: String, option: String) throws -> [Int32] {
    let parts = text.split(separator: ",", omittingEmptySubsequences: true)
    var ids: [Int32] = []
    for part in parts {
        guard let id = Int32(part.trimmingCharacters(in: .whitespaces)), id >= 0 else {
            throw ValidationError("\(option) takes comma-separated token ids like 1,2,3; '\(part)' is not one.")
        }
        ids.append(id)
    }
    guard !ids.isEmpty else { throw ValidationError("\(option) needs at least one token id.") }
    return ids
}

/// JSON output helpers: compact, keys in the order the contract spells them.
enum JSONText {
    static func string(_ value: String) -> String { JSONString.quote(value) }

    static func number(_ value: Double) -> String {
        guard value.isFinite else { return "null" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(format: "%.4f", value)
    }

    static func ids(_ ids: [Int32]) -> String {
        "[" + ids.map(String.init).joined(separator: ",") + "]"
    }
}

/// Writes one line to standard error.
func printError(_ message: String) {
    FileHandle.standardError.write(Data((message + "\n").utf8))
}

extension KeyValueType: ExpressibleByArgument {}

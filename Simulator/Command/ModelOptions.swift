import ArgumentParser
import Ember
import EmberLM

/// Options every command that runs a model shares.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "A model alias (smollm2, gemma3) or the path of a GGUF file.")
    var model: String = "smollm2"

    @Option(name: .long, help: "Worker threads for inference (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 || threads > 256 {
            throw ValidationError("--threads must be between 1 and 256, not \(threads).")
        }
    }

    var threadCount: Int { threads ?? defaultThreadCount() }

    /// Resolves the alias or path and loads the model.
    func load() throws -> LanguageModel {
        let path = try ModelCatalog.resolve(model)
        return try LanguageModel(path: path)
    }
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
    static func string(_ value: String) -> String {
        var result = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 {
                    result += String(format: "\\u%04x", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

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

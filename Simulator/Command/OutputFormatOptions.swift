import ArgumentParser
import EmberCore
import EmberLM
import Foundation

/// `--json-schema FILE | --regex R | --choices a,b,c`: the shape a generation's output must have.
struct OutputFormatOptions: ParsableArguments {
    @Option(name: .long, help: "Constrain the output to JSON valid against this JSON Schema file (see docs/STRUCTURED_OUTPUT.md for the subset).")
    var jsonSchema: String?

    @Option(name: .long, help: "Constrain the output to text matching this regular expression as a whole.")
    var regex: String?

    @Option(name: .long, help: "Constrain the output to exactly one of these comma-separated strings.")
    var choices: String?

    /// JSON Schema files larger than this are refused.
    static let schemaByteLimit = 1 << 20

    func validate() throws {
        if [jsonSchema, regex, choices].compactMap({ $0 }).count > 1 {
            throw ValidationError("give at most one of --json-schema, --regex and --choices.")
        }
        // Compiled here so an unsupported feature or a bad pattern fails before the model loads.
        if let format = try format() {
            do { _ = try Grammar(format) } catch { throw ValidationError(error.message) }
        }
    }

    /// The chosen format (nil: free text).
    func format() throws -> OutputFormat? {
        if let jsonSchema { return .jsonSchema(try Self.readSchema(jsonSchema)) }
        if let regex { return .regularExpression(regex) }
        if let choices { return .choices(try Self.parseChoices(choices, option: "--choices")) }
        return nil
    }

    /// The text of a JSON Schema file.
    static func readSchema(_ path: String) throws -> String {
        let bytes: [UInt8]
        do { bytes = try BoundedRead.file(atPath: path, limit: schemaByteLimit) } catch {
            throw ValidationError("cannot read the JSON Schema: \(error.message)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw ValidationError("the JSON Schema file \(path) is not valid UTF-8.")
        }
        return text
    }

    /// Comma-separated labels, trimmed; empty ones refused.
    static func parseChoices(_ list: String, option: String) throws -> [String] {
        let labels = list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !labels.contains(where: \.isEmpty) else {
            throw ValidationError("\(option) needs comma-separated labels with text, such as meeting,todo,idea.")
        }
        guard Set(labels).count == labels.count else { throw ValidationError("\(option) lists a label twice.") }
        return labels
    }
}

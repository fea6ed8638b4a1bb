import ArgumentParser
import EmberCore
import Ember
import EmberModelCatalog
import EmberGGUF
import EmberTokenizers
import Foundation

/// `ember tokenize`: UTF-8 text on standard input → `{"ids":[…]}`.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize UTF-8 text from standard input and print {\"ids\":[…]}.")

    @Option(name: .long, help: "A model alias (smollm2, gemma3) or the path of a GGUF file.")
    var model: String = "smollm2"

    @Flag(name: .long, help: "Match special-token text (like <|im_start|>) to special token ids.")
    var parseSpecial = false

    @Flag(name: .long, help: "Do not add BOS/EOS even where the model file asks for them.")
    var noSpecial = false

    /// The most text read from standard input (a million tokens or so).
    static let maximumInputBytes = 4 << 20

    func run() throws {
        let path = try ModelCatalog.resolve(model)
        let file = try GGUFFile(path: path)
        let tokenizer = try makeTokenizer(gguf: file)
        let input = try BoundedRead.standardInput(limit: Self.maximumInputBytes)
        guard let text = String(validating: input, as: UTF8.self) else {
            throw ValidationError("standard input is not valid UTF-8.")
        }
        let ids = tokenizer.encode(text, addSpecial: !noSpecial, parseSpecial: parseSpecial)
        print("{\"ids\":\(JSONText.ids(ids))}")
    }
}

import ArgumentParser
import EmberCore
import Foundation

/// The `ember` command: Ember's models, inference and phone simulator from the command line.
struct EmberCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ember",
        abstract: "Run small language models under a phone's memory, heat and battery budgets.",
        version: EmberVersion.current,
        subcommands: [BenchCommand.self, ConvertCommand.self, ModelsCommand.self, TokenizeCommand.self, GenerateCommand.self, LogitsCommand.self, PerplexityCommand.self, SimCommand.self, PlanCommand.self,
                      PackCommand.self, UnpackCommand.self, InspectCommand.self, VerifyCommand.self, NotesCommand.self, EvalCommand.self, FuzzCommand.self, EngineCommand.self]
    )
}

/// The program's entry: parses and runs a command, and reports a failure the same way for every
/// command — one line on standard error (no usage after it) and a non-zero exit, plus
/// `{"error": "…"}` on standard output when `--json` was among the arguments. `--help` and
/// `--version` print as ArgumentParser prints them.
@main
enum EmberMain {
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        do {
            try await execute(arguments)
        } catch {
            fail(error, json: arguments.prefix { $0 != "--" }.contains("--json"))
        }
    }

    /// Parses `arguments` with the root command and runs the command they name (also in-process,
    /// by `ember fuzz`).
    static func execute(_ arguments: [String]) async throws {
        var command = try EmberCLI.parseAsRoot(arguments)
        if var asyncCommand = command as? AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
    }

    static func fail(_ error: Error, json: Bool) -> Never {
        let code = EmberCLI.exitCode(for: error)
        if error is CleanExit || code == .success {
            EmberCLI.exit(withError: error)  // help, version
        }
        let message = oneLine(EmberCLI.message(for: error))
        // An empty message: the command has reported the failure itself (`throw ExitCode(1)`).
        if !message.isEmpty {
            if json { print("{\"error\":\(JSONString.quote(message))}") }
            printError("Error: \(message)")
        }
        exit(code.rawValue)
    }

    /// `text` on one line: surrounding whitespace trimmed, inner line breaks as spaces.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
    }
}

import ArgumentParser

/// The `ember` command: Ember's models, inference and phone simulator from the command line.
@main
struct EmberCLI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ember",
        abstract: "Run small language models under a phone's memory, heat and battery budgets.",
        subcommands: [BenchCommand.self, ModelsCommand.self, TokenizeCommand.self, GenerateCommand.self, LogitsCommand.self, PerplexityCommand.self, SimCommand.self, PlanCommand.self,
                      PackCommand.self, UnpackCommand.self, InspectCommand.self, VerifyCommand.self, NotesCommand.self, EvalCommand.self, FuzzCommand.self]
    )
}

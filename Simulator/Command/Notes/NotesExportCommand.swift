import ArgumentParser
import EmberNotes

/// `ember notes export`: every note outside the trash as a Markdown file with YAML front matter.
struct NotesExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write every note outside the trash to a directory as Markdown files with YAML front matter.")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "The directory to write to (created when missing).")
    var directory: String

    @Flag(help: "Replace files of the same name instead of stopping.")
    var overwrite = false

    @OptionGroup var output: NotesOutputOptions

    func run() throws {
        let store = try notes.openStore(creating: false)
        let paths = try store.exportMarkdown(to: directory, overwrite: overwrite)
        print(output.json ? "{\"files\":\(NotesJSON.array(paths.map(JSONText.string)))}" : "exported \(paths.count) notes to \(directory)")
    }
}

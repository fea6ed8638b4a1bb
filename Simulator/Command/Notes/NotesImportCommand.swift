import ArgumentParser
import EmberNotes

/// `ember notes import`: Markdown files (with or without front matter) as new notes, all or none.
struct NotesImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Add Markdown files as notes; a directory means the .md files in it.",
        discussion: "Every file is checked before anything is stored: one unreadable file, bad front matter or invalid UTF-8 imports nothing.")

    @ParentCommand var notes: NotesCommand

    @Argument(help: "Markdown files or directories.")
    var paths: [String]

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        if paths.isEmpty { throw ValidationError("Give at least one Markdown file or directory to import.") }
    }

    func run() throws {
        let store = try notes.openStore(creating: true)
        let imported = try store.importMarkdown(from: paths)
        let ids = imported.map { String(describing: $0.id) }
        if output.json {
            print("{\"ids\":[\(ids.joined(separator: ","))]}")
        } else if ids.isEmpty {
            print("imported no notes")
        } else {
            print("imported \(ids.count) notes: \(ids.joined(separator: ", "))")
        }
    }
}

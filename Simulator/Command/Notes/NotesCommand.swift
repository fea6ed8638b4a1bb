import ArgumentParser
import EmberCore
import EmberNotes
import Foundation

/// `ember notes`: the offline notes store from the command line.
struct NotesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notes",
        abstract: "Keep notes offline in one SQLite file: add, edit, search, tag, trash, export and import.",
        discussion: """
            Every change is committed to disk before the command prints anything. `add` and `import` \
            create the database when it is missing; the other commands need it to exist.
            """,
        subcommands: [NotesAddCommand.self, NotesEditCommand.self, NotesListCommand.self, NotesShowCommand.self,
                      NotesSearchCommand.self, NotesTagCommand.self, NotesRemoveCommand.self, NotesRestoreCommand.self,
                      NotesExportCommand.self, NotesImportCommand.self, NotesSummarizeCommand.self,
                      NotesExtractCommand.self, NotesClassifyCommand.self,
                      NotesStressWriterCommand.self]
    )

    @Option(name: .customLong("db"), help: ArgumentHelp("The notes database file.", valueName: "path"))
    var databasePath: String

    func validate() throws {
        guard !databasePath.isEmpty else { throw ValidationError("--db needs the path of a notes database file.") }
    }

    /// Opens the store; `creating` lets a missing file be created.
    func openStore(creating: Bool) throws -> NotesStore {
        try Self.checkArgumentsAreUTF8()
        var configuration = NotesStore.Configuration()
        configuration.createIfMissing = creating
        let result = Result { () throws(NotesError) -> NotesStore in try NotesStore(path: databasePath, configuration: configuration) }
        if case .failure(let error) = result, error.code == .noDatabase {
            throw NotesError(.noDatabase, "there is no notes database at \(databasePath); `ember notes --db \(databasePath) add` creates one")
        }
        return try result.get()
    }

    /// Refuses command-line arguments that are not UTF-8. Swift would otherwise replace the bad
    /// bytes with U+FFFD and a note would silently keep the replacement.
    static func checkArgumentsAreUTF8() throws {
        for index in 1..<Int(CommandLine.argc) {
            guard let argument = CommandLine.unsafeArgv[index] else { continue }
            let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(argument).assumingMemoryBound(to: UInt8.self), count: strlen(argument))
            _ = try UTF8Text.decode(bytes, source: "command-line argument \(index)", consequence: "nothing was changed")
        }
    }
}

/// The `--json` flag the notes subcommands share.
struct NotesOutputOptions: ParsableArguments {
    @Flag(help: "Print JSON instead of text.")
    var json = false
}

/// Text given as `--body TEXT` or read from `--body-file PATH` (`-` for standard input), checked to be UTF-8.
struct NotesBodyOptions: ParsableArguments {
    @Option(help: "The note's Markdown body.")
    var body: String?

    @Option(name: .customLong("body-file"), help: ArgumentHelp("Read the body from a file; - reads standard input.", valueName: "path"))
    var bodyFile: String?

    func validate() throws {
        if body != nil, bodyFile != nil { throw ValidationError("Give the body with --body or --body-file, not both.") }
    }

    /// The body, or nil when neither option was given. A file or standard input is read up to the
    /// store's body limit and one byte more: a larger (or endless) source is refused after that much.
    func read(limit: Int = NotesStore.Configuration().maximumBodyBytes) throws -> String? {
        if let body { return body }
        guard let bodyFile else { return nil }
        let source = bodyFile == "-" ? "standard input" : bodyFile
        let bytes: [UInt8]
        do {
            bytes = bodyFile == "-"
                ? try BoundedRead.standardInput(limit: limit)
                : try BoundedRead.file(atPath: bodyFile, limit: limit)
        } catch {
            throw NotesError(error, limit: limit, holder: "a note", consequence: "nothing was saved")
        }
        return try UTF8Text.decode(bytes, source: source, consequence: "nothing was saved")
    }
}

/// Notes, summaries, versions and hits as JSON objects (compact, keys in a fixed order).
enum NotesJSON {
    static func note(_ note: Note, includeBody: Bool = true) -> String {
        var fields = [
            "\"id\":\(note.id)",
            "\"title\":\(JSONText.string(note.title))",
        ]
        if includeBody { fields.append("\"body\":\(JSONText.string(note.body))") }
        fields += [
            "\"tags\":[\(note.tags.map(JSONText.string).joined(separator: ","))]",
            "\"created\":\(time(note.created))",
            "\"updated\":\(time(note.updated))",
            "\"pinned\":\(note.isPinned)",
            "\"archived\":\(note.isArchived)",
            "\"trashed\":\(note.trashed.map(time) ?? "null")",
        ]
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// A stored summary; `method` (abstractive, extractive, extractive-fallback, given) and the
    /// reason a rewrite was rejected when the summary was just made.
    static func summary(_ summary: NoteSummary, method: String? = nil, fallbackReason: String? = nil) -> String {
        var fields = ["\"model\":\(JSONText.string(summary.model))", "\"text\":\(JSONText.string(summary.text))"]
        if let method { fields.append("\"method\":\(JSONText.string(method))") }
        if method != nil { fields.append("\"fallback_reason\":\(fallbackReason.map(JSONText.string) ?? "null")") }
        fields += ["\"created\":\(time(summary.created))", "\"body_sha256\":\(JSONText.string(summary.bodySHA256))",
                   "\"stale\":\(summary.isStale)"]
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func version(_ version: NoteVersion) -> String {
        "{\"number\":\(version.number),\"title\":\(JSONText.string(version.title)),\"body\":\(JSONText.string(version.body)),"
            + "\"saved\":\(time(version.saved))}"
    }

    static func hit(_ hit: SearchHit) -> String {
        "{\"id\":\(hit.noteID),\"title\":\(JSONText.string(hit.title)),\"snippet\":\(JSONText.string(hit.snippet)),"
            + "\"score\":\(JSONText.number(hit.score)),\"updated\":\(time(hit.updated)),\"pinned\":\(hit.isPinned),\"archived\":\(hit.isArchived)}"
    }

    static func array(_ items: [String]) -> String {
        "[" + items.joined(separator: ",") + "]"
    }

    static func time(_ date: Date) -> String {
        JSONText.string(Timestamp.iso8601(date))
    }
}

/// Shared text formatting for notes.
enum NotesText {
    /// `2025-03-14 09:26` (UTC), for tables.
    static func minute(_ date: Date) -> String {
        let iso = Timestamp.iso8601(date)
        return String(iso.prefix(16)).replacingOccurrences(of: "T", with: " ")
    }

    /// Flags as letters: P pinned, A archived, T in the trash.
    static func flags(_ note: Note) -> String {
        (note.isPinned ? "P" : "") + (note.isArchived ? "A" : "") + (note.isInTrash ? "T" : "")
    }

    /// A title for display: "(untitled)" when empty.
    static func title(_ title: String) -> String {
        title.isEmpty ? "(untitled)" : title
    }
}

/// Parses a note id argument.
struct NoteIDArgument: ExpressibleByArgument {
    let id: NoteID

    init?(argument: String) {
        guard let value = Int64(argument), value > 0 else { return nil }
        id = NoteID(value)
    }
}

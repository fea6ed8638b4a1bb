import ArgumentParser
import EmberNotes

/// `ember notes list`: notes in one place, pinned first, then the most recently updated.
struct NotesListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List notes: pinned first, then the most recently updated.",
        discussion: "Flags in the table: P pinned, A archived, T in the trash.")

    @ParentCommand var notes: NotesCommand

    @Flag(help: "Which notes: active (default), archived, all (active and archived) or the trash.")
    var place: NoteFilter.Place = .active

    @Option(help: "Only notes with this tag.")
    var tag: String?

    @Flag(help: "Only pinned notes.")
    var pinned = false

    @Option(help: "At most this many notes.")
    var limit: Int?

    @Flag(help: "Only notes whose summary is missing or stale (the body changed since it was made).")
    var stale = false

    @Option(name: .customLong("summary-model"), help: "With --stale: only this model's summary counts (by default any model's).")
    var summaryModel: String?

    @OptionGroup var output: NotesOutputOptions

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit).") }
        if summaryModel != nil, !stale { throw ValidationError("--summary-model goes with --stale.") }
    }

    func run() throws {
        let store = try notes.openStore(creating: false)
        let filter = NoteFilter(place: place, tag: tag, pinnedOnly: pinned, limit: stale ? nil : limit)
        var listed = stale ? try store.notesNeedingSummary(model: summaryModel, filter) : try store.notes(filter)
        if stale, let limit { listed = Array(listed.prefix(limit)) }
        if output.json {
            print(NotesJSON.array(listed.map { NotesJSON.note($0, includeBody: false) }))
            return
        }
        let rows = [["ID", "UPDATED", "FLAGS", "TITLE", "TAGS"]] + listed.map { note in
            [String(describing: note.id), NotesText.minute(note.updated), NotesText.flags(note),
             NotesText.title(note.title), note.tags.joined(separator: ", ")]
        }
        let widths = (0..<5).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
            }
            print(cells.joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }
}

extension NoteFilter.Place: EnumerableFlag {
    public static func help(for value: Self) -> ArgumentHelp? {
        switch value {
        case .active: "Notes neither archived nor in the trash (the default)."
        case .archived: "Archived notes."
        case .all: "Active and archived notes."
        case .trash: "Notes in the trash."
        }
    }
}

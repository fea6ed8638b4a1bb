import Foundation
import Testing
@testable import EmberNotes

/// Full-text search: diacritics, ranking with the title weighted, snippets, what is left out.
struct SearchTests {
    @Test("\"cafe resume\" finds \"Café résumé\", and \"café\" finds \"cafe\"")
    func diacritics() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let accented = try store.add(NoteDraft(title: "Café résumé", body: "Notes for the job at the corner café."))
        let plain = try store.add(NoteDraft(title: "Menu", body: "The cafe opens at eight."))
        _ = try store.add(NoteDraft(title: "Unrelated", body: "Nothing about coffee here."))

        let hits = try store.search("cafe resume")
        #expect(hits.map(\.noteID) == [accented.id])
        #expect(hits.first?.title == "Café résumé")
        #expect(Set(try store.search("CAFÉ").map(\.noteID)) == [accented.id, plain.id])
        #expect(try store.search("Résumé").map(\.noteID) == [accented.id])
    }

    @Test("a title match ranks above body matches, even a body that repeats the word")
    func titleFirst() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let bodies = try (0..<4).map { index in
            try store.add(NoteDraft(title: "Note \(index)", body: "budget budget budget: the budget for item \(index)"))
        }
        let shortBody = try store.add(NoteDraft(title: "Short", body: "budget"))
        let titled = try store.add(NoteDraft(title: "Budget", body: "Numbers for next year, rent, food and travel, "
            + String(repeating: "more words that say nothing in particular ", count: 30)))

        let hits = try store.search("budget")
        #expect(hits.count == 6)
        #expect(hits.first?.noteID == titled.id)
        #expect(hits.map(\.titleMatches) == [true, false, false, false, false, false])
        #expect(Set(hits.dropFirst().map(\.noteID)) == Set(bodies.map(\.id) + [shortBody.id]))
        #expect(hits.dropFirst().map(\.score) == hits.dropFirst().map(\.score).sorted(), "then best (most negative) bm25 first")
        // Weighted bm25 alone would rank the long note with the title hit below the short bodies.
        #expect(hits[0].score > hits[1].score)
    }

    @Test("snippets mark the matched words; the limit caps the hits")
    func snippets() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        _ = try store.add(NoteDraft(title: "Trip", body: "We take the night train to Vienna and then a bus to the lake."))
        _ = try store.add(NoteDraft(title: "Other trip", body: "A train again."))
        let hits = try store.search("train", limit: 1, snippet: SnippetStyle(open: "<b>", close: "</b>", tokenCount: 6))
        #expect(hits.count == 1)
        #expect(hits[0].snippet.contains("<b>train</b>"))
    }

    @Test("trashed notes are left out; archived ones only when asked")
    func places() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let archived = try store.add(NoteDraft(title: "Archived", body: "quince jam", isArchived: true))
        let trashed = try store.add(NoteDraft(title: "Trashed", body: "quince tart"))
        _ = try store.moveToTrash(trashed.id)
        #expect(try store.search("quince").map(\.noteID) == [archived.id])
        #expect(try store.search("quince", includeArchived: false).isEmpty)
    }

    @Test("typed FTS5 syntax is taken as words; a trailing * is a prefix; an empty query is refused")
    func queries() throws {
        #expect(SearchQuery.matchExpression("cafe resume") == "\"cafe\" \"resume\"")
        #expect(SearchQuery.matchExpression("title: NEAR(\"x\"") == "\"title:\" \"NEAR(\"\"x\"\"\"")
        #expect(SearchQuery.matchExpression("bud*") == "\"bud\"*")
        #expect(SearchQuery.matchExpression(" - * ") == nil)

        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let note = try store.add(NoteDraft(title: "Budgeting", body: "AND OR NOT are words here"))
        #expect(try store.search("bud*").map(\.noteID) == [note.id])
        #expect(try store.search("bud").isEmpty)
        #expect(try store.search("AND OR").map(\.noteID) == [note.id])
        #expect(try store.search("NOT: \"are").map(\.noteID) == [note.id])
        let empty = try #require(throws: NotesError.self) { try store.search("  ?! ") }
        #expect(empty.code == .invalidInput)
    }

    @Test("the index follows edits and purges")
    func indexFollowsChanges() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let note = try store.add(NoteDraft(title: "Shopping", body: "apples"))
        _ = try store.edit(note.id, NoteChange(body: "pears"))
        #expect(try store.search("apples").isEmpty)
        #expect(try store.search("pears").map(\.noteID) == [note.id])
        _ = try store.edit(note.id, NoteChange(isPinned: true))
        #expect(try store.search("pears").map(\.isPinned) == [true])
        try store.purge(note.id)
        #expect(try store.search("pears").isEmpty)
        #expect(try store.integrityProblems().isEmpty)
    }
}

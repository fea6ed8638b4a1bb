import Foundation
import Testing
@testable import EmberNotes

/// Adding, editing, tagging, trash, versions and summaries, through the public API.
struct NotesStoreTests {
    @Test("add stores the note with its tags and dates; show reads it back from a new store")
    func addAndReopen() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("notes.db")
        let added = try NotesStore(path: path, configuration: .testing()).add(
            NoteDraft(title: "Groceries", body: "- milk\n- eggs\n", tags: ["home", "Shopping", "home "], isPinned: true))
        #expect(added.id == NoteID(1))
        #expect(added.tags == ["home", "Shopping"])
        #expect(added.created == added.updated)

        let reopened = try NotesStore(path: path, configuration: .testing())
        let shown = try reopened.note(added.id)
        #expect(shown == added)
        #expect(try reopened.appliedMigrations() == NotesSchema.migrations.map(\.name))
        #expect(try reopened.integrityProblems().isEmpty)
    }

    @Test("list: pinned first, then most recently updated; archive, trash and tag filters")
    func listing() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let first = try store.add(NoteDraft(title: "First", body: "a", tags: ["work"]))
        let second = try store.add(NoteDraft(title: "Second", body: "b"))
        let pinned = try store.add(NoteDraft(title: "Pinned", body: "c", isPinned: true))
        let archived = try store.add(NoteDraft(title: "Archived", body: "d", tags: ["work"], isArchived: true))
        let trashed = try store.add(NoteDraft(title: "Trashed", body: "e"))
        _ = try store.moveToTrash(trashed.id)

        #expect(try store.notes().map(\.id) == [pinned.id, second.id, first.id])
        #expect(try store.notes(NoteFilter(place: .archived)).map(\.id) == [archived.id])
        #expect(try store.notes(NoteFilter(place: .all)).map(\.id) == [pinned.id, archived.id, second.id, first.id])
        #expect(try store.notes(NoteFilter(place: .trash)).map(\.id) == [trashed.id])
        #expect(try store.notes(NoteFilter(place: .all, tag: "WORK")).map(\.id) == [archived.id, first.id])
        #expect(try store.notes(NoteFilter(pinnedOnly: true)).map(\.id) == [pinned.id])
        #expect(try store.notes(NoteFilter(place: .all, limit: 2)).count == 2)
        #expect(try store.tags() == [TagCount(name: "work", noteCount: 2)])
    }

    @Test("edit saves the old text as a version; restore brings a version back and can itself be undone")
    func versions() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let note = try store.add(NoteDraft(title: "Plan", body: "one"))
        let edited = try store.edit(note.id, NoteChange(body: "two"))
        #expect(edited.body == "two")
        #expect(edited.updated > note.updated)
        _ = try store.edit(note.id, NoteChange(title: "Plan B", body: "three"))
        // A pin changes no text and saves no version.
        _ = try store.edit(note.id, NoteChange(isPinned: true))
        // An edit that changes nothing changes nothing.
        let unchanged = try store.edit(note.id, NoteChange(body: "three"))
        #expect(try store.note(note.id) == unchanged)

        let versions = try store.versions(of: note.id)
        #expect(versions.map(\.number) == [1, 2])
        #expect(versions.map(\.body) == ["one", "two"])
        #expect(versions.map(\.title) == ["Plan", "Plan"])

        let restored = try store.restore(note.id, version: 1)
        #expect(restored.title == "Plan" && restored.body == "one" && restored.isPinned)
        #expect(try store.versions(of: note.id).map(\.body) == ["one", "two", "three"])
        let undone = try store.restore(note.id, version: 3)
        #expect(undone.title == "Plan B" && undone.body == "three")

        let missing = try #require(throws: NotesError.self) { try store.restore(note.id, version: 9) }
        #expect(missing.code == .noSuchVersion)
        #expect(missing.message == "note 1 has versions 1 to 4, not 9")
    }

    @Test("trash: rm moves a note there, restore brings it back, purge deletes it and its versions for good")
    func trash() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let note = try store.add(NoteDraft(title: "Old", body: "text", tags: ["misc"]))
        _ = try store.edit(note.id, NoteChange(body: "newer text"))
        _ = try store.storeSummary("A summary.", model: "smollm2", for: note.id)

        let trashed = try store.moveToTrash(note.id)
        #expect(trashed.isInTrash)
        #expect(try store.notes().isEmpty)
        #expect(try store.search("newer").isEmpty)
        let inTrash = try #require(throws: NotesError.self) { try store.edit(note.id, NoteChange(body: "x")) }
        #expect(inTrash.code == .noteInTrash)

        let restored = try store.restoreFromTrash(note.id)
        #expect(!restored.isInTrash)
        #expect(try store.search("newer").map(\.noteID) == [note.id])
        let notInTrash = try #require(throws: NotesError.self) { try store.restoreFromTrash(note.id) }
        #expect(notInTrash.code == .noteNotInTrash)

        _ = try store.moveToTrash(note.id)
        #expect(try store.emptyTrash() == 1)
        let gone = try #require(throws: NotesError.self) { try store.note(note.id) }
        #expect(gone.code == .noSuchNote)
        #expect(gone.message == "there is no note 1")
        #expect(try store.tags().isEmpty)
        #expect(try store.integrityProblems().isEmpty)

        // Ids are never reused, even after the newest note is purged.
        let next = try store.add(NoteDraft(title: "Next", body: ""))
        #expect(next.id == NoteID(2))
        try store.purge(next.id)
        #expect(try store.notes(NoteFilter(place: .all)).isEmpty)
    }

    @Test("a summary records the body's hash and turns stale when the body changes")
    func summaries() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let note = try store.add(NoteDraft(title: "Trip", body: "Train at 9, hotel by the lake."))
        let summary = try store.storeSummary("Train, then hotel.", model: "gemma3", for: note.id)
        #expect(summary.bodySHA256 == NotesStore.bodyHash("Train at 9, hotel by the lake."))
        #expect(try store.summaries(of: note.id).map(\.isStale) == [false])

        _ = try store.edit(note.id, NoteChange(title: "Lake trip"))
        #expect(try store.summaries(of: note.id).map(\.isStale) == [false], "a title change leaves the body's summary fresh")
        _ = try store.edit(note.id, NoteChange(body: "Train at 10 now."))
        #expect(try store.summaries(of: note.id).map(\.isStale) == [true])

        _ = try store.storeSummary("Train at 10.", model: "gemma3", for: note.id)
        _ = try store.storeSummary("Ten o'clock train.", model: "smollm2", for: note.id)
        let all = try store.summaries(of: note.id)
        #expect(all.count == 2)
        #expect(all.allSatisfy { !$0.isStale })
        #expect(Set(all.map(\.model)) == ["gemma3", "smollm2"])

        for (text, model) in [("", "m"), ("text", " ")] {
            let refused = try #require(throws: NotesError.self) { try store.storeSummary(text, model: model, for: note.id) }
            #expect(refused.code == .invalidInput)
        }
    }

    @Test("a note edited while it was being summarized ends up stale; missing and stale summaries are listed")
    func summaryOfAnEditedNote() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let trip = try store.add(NoteDraft(title: "Trip", body: "Train at 9."))
        let shopping = try store.add(NoteDraft(title: "Shopping", body: "Milk, eggs."))
        let untouched = try store.add(NoteDraft(title: "Books", body: "Piranesi next."))
        #expect(Set(try store.notesNeedingSummary().map(\.id)) == [trip.id, shopping.id, untouched.id])

        // The request starts, the note is edited, then the summary of the old body arrives.
        let atStart = NotesStore.bodySHA256(trip.body)
        _ = try store.edit(trip.id, NoteChange(body: "Train at 10 now."))
        let stored = try store.storeSummary("Train at 9.", model: "smollm2", for: trip.id, bodySHA256: atStart)
        #expect(stored.isStale)
        #expect(stored.bodySHA256 == atStart)
        #expect(try store.summaries(of: trip.id).map(\.isStale) == [true])

        _ = try store.storeSummary("Milk and eggs.", model: "smollm2", for: shopping.id, bodySHA256: NotesStore.bodySHA256(shopping.body))
        _ = try store.storeSummary("Piranesi.", model: "gemma3", for: untouched.id)
        #expect(Set(try store.notesNeedingSummary().map(\.id)) == [trip.id])
        #expect(Set(try store.notesNeedingSummary(model: "smollm2").map(\.id)) == [trip.id, untouched.id])
        #expect(Set(try store.notesNeedingSummary(model: "gemma3").map(\.id)) == [trip.id, shopping.id])
        _ = try store.edit(shopping.id, NoteChange(body: "Milk, eggs, bread."))
        #expect(Set(try store.notesNeedingSummary().map(\.id)) == [trip.id, shopping.id])

        let refused = try #require(throws: NotesError.self) {
            try store.storeSummary("x", model: "m", for: trip.id, bodySHA256: "not-a-hash")
        }
        #expect(refused.code == .invalidInput)
    }

    @Test("refuses empty notes, multi-line titles, NUL and bad tags, and stores nothing")
    func refusals() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let drafts: [(NoteDraft, NotesError.Code)] = [
            (NoteDraft(title: " ", body: "\n"), .invalidInput),
            (NoteDraft(title: "two\nlines", body: "x"), .invalidInput),
            (NoteDraft(title: "nul", body: "a\0b"), .invalidInput),
            (NoteDraft(title: "tag", body: "x", tags: [""]), .invalidInput),
            (NoteDraft(title: "tag", body: "x", tags: [String(repeating: "t", count: 101)]), .tooLarge),
            (NoteDraft(title: String(repeating: "t", count: 1025), body: "x"), .tooLarge),
        ]
        for (draft, code) in drafts {
            let refused = try #require(throws: NotesError.self) { try store.add(draft) }
            #expect(refused.code == code, "\(refused)")
        }
        #expect(try store.notes(NoteFilter(place: .all)).isEmpty)
    }

    @Test("readers see committed notes while the writer keeps writing")
    func concurrentReaders() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                for index in 0..<200 { _ = try store.add(NoteDraft(title: "note \(index)", body: "body \(index)")) }
                return 200
            }
            for _ in 0..<3 {
                group.addTask {
                    var lastCount = 0
                    for _ in 0..<50 {
                        let count = try store.notes(NoteFilter(place: .all)).count
                        #expect(count >= lastCount, "a reader never sees notes disappear")
                        lastCount = count
                    }
                    return lastCount
                }
            }
            for try await _ in group {}
        }
        #expect(try store.notes(NoteFilter(place: .all)).count == 200)
        #expect(try store.integrityProblems().isEmpty)
    }
}

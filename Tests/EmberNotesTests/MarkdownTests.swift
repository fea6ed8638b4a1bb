import Foundation
import Testing
@testable import EmberNotes

/// Markdown files with YAML front matter: the exact text written, a lossless round trip, and
/// the front matter people write by hand.
struct MarkdownTests {
    @Test("render writes the front matter fields in order and the body byte for byte")
    func render() {
        let note = Note(id: NoteID(12), title: "Café \"résumé\": v2", body: "# Plan\n\n- one\n",
                        created: Timestamp.date(milliseconds: 1_741_944_413_589), updated: Timestamp.date(milliseconds: 1_742_025_600_000),
                        isPinned: true, isArchived: false, trashed: nil, tags: ["ideas", "work, later"])
        #expect(MarkdownNoteFile.render(note) == """
            ---
            title: "Café \\"résumé\\": v2"
            tags: ["ideas", "work, later"]
            created: 2025-03-14T09:26:53.589Z
            updated: 2025-03-15T08:00:00Z
            pinned: true
            archived: false
            ---
            # Plan

            - one

            """)
        #expect(MarkdownNoteFile.fileName(for: note) == "0012-cafe-resume-v2.md")
    }

    @Test("export then import into a new database keeps every field of every note")
    func roundTrip() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = try NotesStore(path: directory.file("source.db"), configuration: .testing())
        let drafts = [
            NoteDraft(title: "Café résumé", body: "Crème brûlée, naïve façade.\n", tags: ["français", "food"], isPinned: true),
            NoteDraft(title: "Body that looks like front matter", body: "---\ntitle: not this\n---\nreal body", tags: []),
            NoteDraft(title: "Quotes ' \" \\ and: colons # not a comment", body: "no trailing newline", tags: ["a \"quoted\" tag", "x: y"]),
            NoteDraft(title: "Archived", body: "\n\n  indented\n\n\n", isArchived: true),
            NoteDraft(title: "", body: "A note without a title.\r\nWith CRLF lines.\r\n"),
            NoteDraft(title: "Tabs\tand unicode ✓ 日本語 😀", body: "\u{2028}line separator and \u{FEFF} BOM inside"),
            NoteDraft(title: "Old", body: "from long ago", created: Timestamp.date(milliseconds: -86_400_001),
                      updated: Timestamp.date(milliseconds: 0)),
        ]
        let originals = try drafts.map { try source.add($0) }
        let paths = try source.exportMarkdown(to: directory.file("export"))
        #expect(paths.count == drafts.count)

        let target = try NotesStore(path: directory.file("target.db"), configuration: .testing())
        let imported = try target.importMarkdown(from: [directory.file("export")])
        #expect(imported.count == originals.count)
        for (original, copy) in zip(originals, imported) {
            #expect(copy.title == original.title)
            #expect(copy.body == original.body)
            #expect(copy.tags == original.tags)
            #expect(copy.created == original.created)
            #expect(copy.updated == original.updated)
            #expect(copy.isPinned == original.isPinned)
            #expect(copy.isArchived == original.isArchived)
        }
        // Exporting the copies gives the same files.
        let second = try target.exportMarkdown(to: directory.file("export2"))
        for (first, again) in zip(paths, second) {
            #expect(FileManager.default.contents(atPath: first) == FileManager.default.contents(atPath: again))
        }
    }

    @Test("export leaves out the trash and will not overwrite unless asked")
    func exportRules() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        _ = try store.add(NoteDraft(title: "Keep", body: "k"))
        let gone = try store.add(NoteDraft(title: "Gone", body: "g"))
        _ = try store.moveToTrash(gone.id)
        let paths = try store.exportMarkdown(to: directory.file("out"))
        #expect(paths.map { ($0 as NSString).lastPathComponent } == ["0001-keep.md"])
        let error = try #require(throws: NotesError.self) { try store.exportMarkdown(to: directory.file("out")) }
        #expect(error.code == .fileSystem)
        #expect(try store.exportMarkdown(to: directory.file("out"), overwrite: true).count == 1)
    }

    @Test("front matter as people write it: block lists, single quotes, comments, CRLF, a BOM, time zones")
    func handWritten() throws {
        let text = "\u{FEFF}---\r\ntitle: 'It''s a plan'   # the title\r\ntags:\r\n  - travel\r\n  - \"far away\"\r\n"
            + "created: 2025-03-14 10:26:53+01:00\r\nupdated: 2025-03-14\r\npinned: yes\r\nid: 77\r\n---\r\nBody\r\n"
        let draft = try MarkdownNoteFile.parse(text, source: "plan.md")
        #expect(draft.title == "It's a plan")
        #expect(draft.tags == ["travel", "far away"])
        #expect(draft.created == Timestamp.date(milliseconds: 1_741_944_413_000))
        #expect(draft.updated == Timestamp.date(milliseconds: 1_741_910_400_000))
        #expect(draft.isPinned && !draft.isArchived)
        #expect(draft.body == "Body\r\n")

        let flow = try MarkdownNoteFile.parse("---\ntitle: Plain: with colon\ntags: [a, 'b c', \"d\"]\n---\n", source: "x.md")
        #expect(flow.title == "Plain: with colon")
        #expect(flow.tags == ["a", "b c", "d"])
        #expect(flow.body == "")
    }

    @Test("a file without front matter is titled by its first heading, else by its name")
    func withoutFrontMatter() throws {
        let headed = try MarkdownNoteFile.parse("\n# Shopping list\n- milk\n", source: "/tmp/a.md")
        #expect(headed.title == "Shopping list")
        #expect(headed.body == "\n# Shopping list\n- milk\n")
        let plain = try MarkdownNoteFile.parse("just text", source: "/tmp/ideas for june.md")
        #expect(plain.title == "ideas for june")
    }

    @Test("bad front matter names the file and line", arguments: [
        ("---\ntitle: x\n", "no closing --- line"),
        ("---\ncreated: last tuesday\n---\n", "line 2: 'created' is last tuesday, not a date"),
        ("---\npinned: maybe\n---\n", "line 2: 'pinned' is maybe, not true or false"),
        ("---\ntitle: \"open\n---\n", "line 2: a double-quoted value does not end on its line"),
        ("---\ntitle: \"bad \\q escape\"\n---\n", "line 2: '\\q' is not a YAML escape"),
        ("---\ntitle: a\ntitle: b\n---\n", "line 3: 'title' appears twice"),
        ("---\ntags: [a, b\n---\n", "line 2: a [list] does not close on its line"),
        ("---\njust words\n---\n", "line 2: expected 'key: value'"),
    ])
    func badFrontMatter(text: String, expected: String) throws {
        let error = try #require(throws: NotesError.self) { try MarkdownNoteFile.parse(text, source: "n.md") }
        #expect(error.code == .invalidFrontMatter)
        #expect(error.message.hasPrefix("n.md"))
        #expect(error.message.contains(expected), "\(error.message)")
    }

    @Test("import is all or nothing: one bad file among good ones imports none")
    func importAllOrNothing() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try NotesStore(path: directory.file("notes.db"), configuration: .testing())
        let kept = try store.add(NoteDraft(title: "Already here", body: "stays"))
        let folder = directory.file("in")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data("---\ntitle: Good\n---\nfine".utf8).write(to: URL(fileURLWithPath: folder + "/1-good.md"))
        try Data("---\ntitle: Bad\npinned: perhaps\n---\n".utf8).write(to: URL(fileURLWithPath: folder + "/2-bad.md"))
        try Data("ignored".utf8).write(to: URL(fileURLWithPath: folder + "/notes.txt"))
        let error = try #require(throws: NotesError.self) { try store.importMarkdown(from: [folder]) }
        #expect(error.code == .invalidFrontMatter)
        #expect(try store.notes(NoteFilter(place: .all)).map(\.id) == [kept.id])

        try FileManager.default.removeItem(atPath: folder + "/2-bad.md")
        let imported = try store.importMarkdown(from: [folder])
        #expect(imported.map(\.title) == ["Good"])
    }
}

/// ISO 8601 times as front matter writes and reads them.
struct TimestampTests {
    @Test("format and parse agree across the epoch, leap days and time zones")
    func roundTrip() {
        for milliseconds: Int64 in [0, 1, -1, 951_782_400_000, 1_741_944_413_589, -62_135_596_800_000, 253_402_300_799_999] {
            let text = Timestamp.iso8601(milliseconds: milliseconds)
            #expect(Timestamp.parse(text) == milliseconds, "\(text)")
        }
        #expect(Timestamp.iso8601(milliseconds: 951_782_400_000) == "2000-02-29T00:00:00Z")
        #expect(Timestamp.iso8601(milliseconds: -1) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.parse("2025-03-14T10:26:53.5+01:00") == 1_741_944_413_500)
        #expect(Timestamp.parse("2025-03-14T04:26:53.123456-0500") == 1_741_944_413_123)
        #expect(Timestamp.parse("2025-02-29") == nil)
        #expect(Timestamp.parse("2025-03-14T25:00") == nil)
        #expect(Timestamp.parse("14/03/2025") == nil)
    }
}

import Foundation

extension NotesStore {
    /// The note with `id`, in the trash or not.
    public func note(_ id: NoteID) throws(NotesError) -> Note {
        let note = try read { connection in try Self.fetchNote(id, connection) }
        guard let note else { throw Self.noSuchNote(id) }
        return note
    }

    /// Notes in one place (active, archived, all, trash), pinned first, then the most recently updated.
    public func notes(_ filter: NoteFilter = NoteFilter()) throws(NotesError) -> [Note] {
        var conditions: [String] = []
        var values: [SQLiteValue] = []
        switch filter.place {
        case .active: conditions.append("trashed_at IS NULL AND archived = 0")
        case .archived: conditions.append("trashed_at IS NULL AND archived = 1")
        case .all: conditions.append("trashed_at IS NULL")
        case .trash: conditions.append("trashed_at IS NOT NULL")
        }
        if filter.pinnedOnly { conditions.append("pinned = 1") }
        if let tag = filter.tag {
            conditions.append("id IN (SELECT nt.note_id FROM note_tags nt JOIN tags t ON t.id = nt.tag_id WHERE t.name = ?)")
            values.append(.text(tag.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        var sql = "\(Self.noteColumns) WHERE \(conditions.joined(separator: " AND ")) ORDER BY pinned DESC, updated_at DESC, id DESC"
        if let limit = filter.limit {
            sql += " LIMIT ?"
            values.append(.integer(Int64(max(0, limit))))
        }
        let query = sql, parameters = values
        return try read { connection in try connection.query(query, parameters, Self.note(from:)) }
    }

    /// Notes outside the trash whose title or body has every word of `query`, best first.
    ///
    /// Words are matched by SQLite's `unicode61` tokenizer with diacritics removed, so "cafe resume"
    /// finds "Café résumé" and case does not matter. A word ending in `*` matches as a prefix.
    ///
    /// Notes whose title holds every word come first; within each group the order is `bm25()` with
    /// a title match weighted ``Configuration/titleWeight`` times a body match. (`bm25()` alone
    /// cannot promise title hits first: it normalizes by the whole note's length, so a long body
    /// drags a title hit below a short body that repeats the word.)
    /// - Throws: ``NotesError/Code/invalidInput`` when the query has no word.
    public func search(_ query: String, limit: Int = 20, includeArchived: Bool = true,
                       snippet style: SnippetStyle = SnippetStyle()) throws(NotesError) -> [SearchHit] {
        guard let expression = SearchQuery.matchExpression(query) else {
            throw NotesError(.invalidInput, "search needs at least one word or number")
        }
        let sql = """
            SELECT n.id, n.title, n.updated_at, n.pinned, n.archived,
                   snippet(notes_fts, -1, ?, ?, ?, ?), bm25(notes_fts, ?, 1.0) AS score,
                   n.id IN (SELECT rowid FROM notes_fts WHERE notes_fts MATCH ?) AS title_match
            FROM notes_fts JOIN notes AS n ON n.id = notes_fts.rowid
            WHERE notes_fts MATCH ? AND n.trashed_at IS NULL\(includeArchived ? "" : " AND n.archived = 0")
            ORDER BY title_match DESC, score, n.updated_at DESC, n.id DESC
            LIMIT ?
            """
        let values: [SQLiteValue] = [
            .text(style.open), .text(style.close), .text(style.ellipsis), .integer(Int64(min(64, max(1, style.tokenCount)))),
            .real(configuration.titleWeight), .text("title : (\(expression))"), .text(expression), .integer(Int64(max(0, limit))),
        ]
        return try read { connection in
            try connection.query(sql, values) { row in
                SearchHit(noteID: NoteID(row.integer(0)), title: row.text(1), updated: Timestamp.date(milliseconds: row.integer(2)),
                          isPinned: row.integer(3) != 0, isArchived: row.integer(4) != 0, snippet: row.text(5), score: row.real(6),
                          titleMatches: row.integer(7) != 0)
            }
        }
    }

    /// The saved earlier texts of a note, oldest (1) first.
    public func versions(of id: NoteID) throws(NotesError) -> [NoteVersion] {
        try read { connection in
            guard try Self.fetchNote(id, connection) != nil else { throw Self.noSuchNote(id) }
            return try connection.query("""
                SELECT number, title, body, saved_at FROM note_versions WHERE note_id = ? ORDER BY number
                """, [.integer(id.rawValue)]) { row in
                NoteVersion(noteID: id, number: Int(row.integer(0)), title: row.text(1), body: row.text(2),
                            saved: Timestamp.date(milliseconds: row.integer(3)))
            }
        }
    }

    /// The note's summaries, one per model, each marked stale when the body changed after it.
    public func summaries(of id: NoteID) throws(NotesError) -> [NoteSummary] {
        try read { connection in
            guard let note = try Self.fetchNote(id, connection) else { throw Self.noSuchNote(id) }
            let current = Self.bodyHash(note.body)
            return try connection.query("""
                SELECT model, text, created_at, body_sha256 FROM summaries WHERE note_id = ? ORDER BY created_at DESC, model
                """, [.integer(id.rawValue)]) { row in
                NoteSummary(noteID: id, text: row.text(1), model: row.text(0), created: Timestamp.date(milliseconds: row.integer(2)),
                            bodySHA256: row.text(3), isStale: row.text(3) != current)
            }
        }
    }

    /// The note's extractions and classifications, newest first, each marked stale when the body
    /// changed after it.
    public func extractions(of id: NoteID) throws(NotesError) -> [NoteExtraction] {
        try read { connection in
            guard let note = try Self.fetchNote(id, connection) else { throw Self.noSuchNote(id) }
            let current = Self.bodyHash(note.body)
            return try connection.query("""
                SELECT kind, model, text, created_at, body_sha256 FROM extractions WHERE note_id = ?
                ORDER BY created_at DESC, kind, model
                """, [.integer(id.rawValue)]) { row in
                NoteExtraction(noteID: id, kind: row.text(0), model: row.text(1), text: row.text(2),
                               created: Timestamp.date(milliseconds: row.integer(3)), bodySHA256: row.text(4),
                               isStale: row.text(4) != current)
            }
        }
    }

    /// Notes of `filter` whose summary is missing or stale: with `model`, that model's summary;
    /// without, any summary (a note is listed when none of its summaries describes its body now).
    /// The order is `notes(_:)`'s; `filter.limit` bounds the notes looked at.
    public func notesNeedingSummary(model: String? = nil, _ filter: NoteFilter = NoteFilter()) throws(NotesError) -> [Note] {
        let candidates = try notes(filter)
        let wanted = model?.trimmingCharacters(in: .whitespacesAndNewlines)
        let fresh: Set<Int64> = try read { connection in
            let rows = try connection.query("SELECT note_id, model, body_sha256 FROM summaries", []) { row in
                (row.integer(0), row.text(1), row.text(2))
            }
            let hashes = Dictionary(candidates.map { ($0.id.rawValue, Self.bodyHash($0.body)) }, uniquingKeysWith: { first, _ in first })
            return Set(rows.filter { id, model, hash in (wanted == nil || model == wanted) && hashes[id] == hash }.map(\.0))
        }
        return candidates.filter { !fresh.contains($0.id.rawValue) }
    }

    /// Every tag with the number of notes outside the trash that carry it, by name.
    public func tags() throws(NotesError) -> [TagCount] {
        try read { connection in
            try connection.query("""
                SELECT t.name, count(n.id) FROM tags t
                JOIN note_tags nt ON nt.tag_id = t.id
                LEFT JOIN notes n ON n.id = nt.note_id AND n.trashed_at IS NULL
                GROUP BY t.id ORDER BY t.name COLLATE NOCASE
                """) { TagCount(name: $0.text(0), noteCount: Int($0.integer(1))) }
        }
    }

    // MARK: Rows to notes

    /// Selects a note's columns and its tags joined by U+001F (tags never hold control characters).
    static let noteColumns = """
        SELECT id, title, body, created_at, updated_at, pinned, archived, trashed_at,
               (SELECT group_concat(t.name, char(31)) FROM note_tags nt JOIN tags t ON t.id = nt.tag_id WHERE nt.note_id = notes.id)
        FROM notes
        """

    static func note(from row: SQLiteRow) -> Note {
        let tags = row.optionalText(8).map { $0.split(separator: "\u{1F}").map(String.init) } ?? []
        return Note(id: NoteID(row.integer(0)), title: row.text(1), body: row.text(2),
                    created: Timestamp.date(milliseconds: row.integer(3)), updated: Timestamp.date(milliseconds: row.integer(4)),
                    isPinned: row.integer(5) != 0, isArchived: row.integer(6) != 0,
                    trashed: row.optionalInteger(7).map(Timestamp.date(milliseconds:)),
                    tags: tags.sorted { $0.localizedCaseInsensitiveCompare($1) == .orderedAscending })
    }

    static func fetchNote(_ id: NoteID, _ connection: SQLiteConnection) throws(SQLiteError) -> Note? {
        try connection.first("\(noteColumns) WHERE id = ?", [.integer(id.rawValue)], note(from:))
    }
}

/// Turns what a person typed into an FTS5 `MATCH` expression.
enum SearchQuery {
    /// Every whitespace-separated word becomes a quoted FTS5 string, so every word must appear and
    /// FTS5 operators typed by a person (`AND`, `NEAR`, `:`, `-`) are taken as plain words. A word
    /// ending in `*` matches as a prefix. Nil when no word has a letter or a digit.
    static func matchExpression(_ text: String) -> String? {
        var terms: [String] = []
        for word in text.split(whereSeparator: { $0.isWhitespace }) {
            var core = Substring(word)
            var isPrefix = false
            while core.hasSuffix("*") {
                core = core.dropLast()
                isPrefix = true
            }
            guard core.contains(where: { $0.isLetter || $0.isNumber }) else { continue }
            let quoted = "\"" + core.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            terms.append(isPrefix ? quoted + "*" : quoted)
        }
        return terms.isEmpty ? nil : terms.joined(separator: " ")
    }
}

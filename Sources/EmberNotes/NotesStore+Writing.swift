import EmberCore
import Foundation

extension NotesStore {
    /// Stores a new note and its tags in one transaction.
    /// - Returns: the note as stored, with its new id. The commit is on disk when this returns.
    public func add(_ draft: NoteDraft) throws(NotesError) -> Note {
        let name = Self.describeNew(draft.title)
        try validate(title: draft.title, body: draft.body, unsaved: "\(name) was not saved")
        try checkNotEmpty(title: draft.title, body: draft.body, unsaved: "\(name) was not saved")
        let tags = try normalizedTags(draft.tags, unsaved: "\(name) was not saved")
        var checked = draft
        checked.tags = tags
        let now = nowMilliseconds
        return try write(unsaved: "\(name) was not saved") { connection in
            try Self.insert(checked, now: now, connection)
        }
    }

    /// Changes a note's title, body, pin or archive flag. A changed title or body first saves the
    /// old text as a new version (see ``versions(of:)``).
    /// - Throws: ``NotesError/Code/noSuchNote``, ``NotesError/Code/noteInTrash`` (restore it first).
    public func edit(_ id: NoteID, _ change: NoteChange) throws(NotesError) -> Note {
        let unsaved = "note \(id) was not saved"
        try validate(title: change.title ?? "", body: change.body ?? "", unsaved: unsaved)
        let now = nowMilliseconds
        return try write(unsaved: unsaved) { connection in
            let current = try Self.editableNote(id, connection)
            let title = change.title ?? current.title
            let body = change.body ?? current.body
            try checkNotEmpty(title: title, body: body, unsaved: unsaved)
            let pinned = change.isPinned ?? current.isPinned
            let archived = change.isArchived ?? current.isArchived
            let textChanged = title != current.title || body != current.body
            guard textChanged || pinned != current.isPinned || archived != current.isArchived else { return current }
            if textChanged { try Self.saveVersion(of: current, at: now, connection) }
            try connection.run("""
                UPDATE notes SET title = ?, body = ?, pinned = ?, archived = ?, updated_at = ? WHERE id = ?
                """, [.text(title), .text(body), .integer(pinned ? 1 : 0), .integer(archived ? 1 : 0),
                      .integer(max(now, Timestamp.milliseconds(current.updated))), .integer(id.rawValue)])
            return try Self.fetchNote(id, connection)!
        }
    }

    /// Adds tags to a note (tags it already has are left alone).
    public func addTags(_ names: [String], to id: NoteID) throws(NotesError) -> Note {
        let unsaved = "the tags of note \(id) were not changed"
        let tags = try normalizedTags(names, unsaved: unsaved)
        let now = nowMilliseconds
        return try write(unsaved: unsaved) { connection in
            _ = try Self.editableNote(id, connection)
            try Self.attach(tags, to: id, connection)
            try connection.run("UPDATE notes SET updated_at = max(updated_at, ?) WHERE id = ?", [.integer(now), .integer(id.rawValue)])
            return try Self.fetchNote(id, connection)!
        }
    }

    /// Removes tags from a note; a tag no note carries any more is forgotten.
    public func removeTags(_ names: [String], from id: NoteID) throws(NotesError) -> Note {
        let unsaved = "the tags of note \(id) were not changed"
        let tags = try normalizedTags(names, unsaved: unsaved)
        let now = nowMilliseconds
        return try write(unsaved: unsaved) { connection in
            _ = try Self.editableNote(id, connection)
            for tag in tags {
                try connection.run("""
                    DELETE FROM note_tags WHERE note_id = ? AND tag_id = (SELECT id FROM tags WHERE name = ?)
                    """, [.integer(id.rawValue), .text(tag)])
            }
            try Self.forgetUnusedTags(connection)
            try connection.run("UPDATE notes SET updated_at = max(updated_at, ?) WHERE id = ?", [.integer(now), .integer(id.rawValue)])
            return try Self.fetchNote(id, connection)!
        }
    }

    /// Moves a note to the trash. It stays searchable by id and restorable until purged.
    public func moveToTrash(_ id: NoteID) throws(NotesError) -> Note {
        let now = nowMilliseconds
        return try write(unsaved: "note \(id) was not moved to the trash") { connection in
            guard try Self.fetchNote(id, connection) != nil else { throw Self.noSuchNote(id) }
            try connection.run("UPDATE notes SET trashed_at = ? WHERE id = ? AND trashed_at IS NULL", [.integer(now), .integer(id.rawValue)])
            return try Self.fetchNote(id, connection)!
        }
    }

    /// Moves several notes to the trash in one transaction: when any id has no note, none is moved.
    /// - Returns: the notes as stored, in the order of `ids` (a repeated id once).
    public func moveToTrash(_ ids: [NoteID]) throws(NotesError) -> [Note] {
        let ids = Self.unique(ids)
        let now = nowMilliseconds
        return try write(unsaved: "no note was moved to the trash") { connection in
            try Self.requireNotes(ids, connection, consequence: "nothing was moved to the trash")
            return try ids.map { id in
                try connection.run("UPDATE notes SET trashed_at = ? WHERE id = ? AND trashed_at IS NULL", [.integer(now), .integer(id.rawValue)])
                return try Self.fetchNote(id, connection)!
            }
        }
    }

    /// Takes a note out of the trash.
    /// - Throws: ``NotesError/Code/noteNotInTrash`` when it is not there.
    public func restoreFromTrash(_ id: NoteID) throws(NotesError) -> Note {
        try write(unsaved: "note \(id) was not restored") { connection in
            guard let note = try Self.fetchNote(id, connection) else { throw Self.noSuchNote(id) }
            guard note.isInTrash else {
                throw NotesError(.noteNotInTrash, "note \(id) is not in the trash; to bring back an earlier text, name a version")
            }
            try connection.run("UPDATE notes SET trashed_at = NULL WHERE id = ?", [.integer(id.rawValue)])
            return try Self.fetchNote(id, connection)!
        }
    }

    /// Replaces a note's title and body with those of version `number`; the text it replaces is
    /// saved as a new version first, so a restore can itself be undone.
    public func restore(_ id: NoteID, version number: Int) throws(NotesError) -> Note {
        let now = nowMilliseconds
        return try write(unsaved: "note \(id) was not restored") { connection in
            let current = try Self.editableNote(id, connection)
            guard let version = try connection.first("""
                SELECT title, body FROM note_versions WHERE note_id = ? AND number = ?
                """, [.integer(id.rawValue), .integer(Int64(number))], { (title: $0.text(0), body: $0.text(1)) }) else {
                let count = try connection.first("SELECT count(*) FROM note_versions WHERE note_id = ?", [.integer(id.rawValue)]) { $0.integer(0) } ?? 0
                throw NotesError(.noSuchVersion, count == 0
                    ? "note \(id) has no earlier versions"
                    : "note \(id) has versions 1 to \(count), not \(number)")
            }
            try Self.saveVersion(of: current, at: now, connection)
            try connection.run("UPDATE notes SET title = ?, body = ?, updated_at = max(updated_at, ?) WHERE id = ?",
                               [.text(version.title), .text(version.body), .integer(now), .integer(id.rawValue)])
            return try Self.fetchNote(id, connection)!
        }
    }

    /// Deletes a note for good, with its tags, summaries and versions. Works in or out of the trash.
    public func purge(_ id: NoteID) throws(NotesError) {
        try write(unsaved: "note \(id) was not deleted") { connection in
            guard try Self.fetchNote(id, connection) != nil else { throw Self.noSuchNote(id) }
            try connection.run("DELETE FROM notes WHERE id = ?", [.integer(id.rawValue)])
            try Self.forgetUnusedTags(connection)
        }
    }

    /// Deletes several notes for good in one transaction: when any id has no note, none is deleted.
    /// - Returns: the ids deleted, in the order of `ids` (a repeated id once).
    @discardableResult
    public func purge(_ ids: [NoteID]) throws(NotesError) -> [NoteID] {
        let ids = Self.unique(ids)
        try write(unsaved: "no note was deleted") { connection in
            try Self.requireNotes(ids, connection, consequence: "nothing was deleted")
            for id in ids {
                try connection.run("DELETE FROM notes WHERE id = ?", [.integer(id.rawValue)])
            }
            try Self.forgetUnusedTags(connection)
        }
        return ids
    }

    /// Deletes for good every note in the trash.
    /// - Returns: how many notes were deleted.
    @discardableResult
    public func emptyTrash() throws(NotesError) -> Int {
        try write(unsaved: "the trash was not emptied") { connection in
            try connection.run("DELETE FROM notes WHERE trashed_at IS NOT NULL")
            let count = connection.changedRowCount
            try Self.forgetUnusedTags(connection)
            return count
        }
    }

    /// Stores `text` as `model`'s summary of the note, replacing that model's earlier summary.
    ///
    /// The summary records the SHA-256 of the body it was made from: `bodySHA256` when given —
    /// `NotesStore.bodySHA256(_:)` of the body as the summary request started — else the body's
    /// now. A note edited while it was being summarized so ends up with a stale summary, not a
    /// fresh one, and an edit after storing makes it stale too.
    public func storeSummary(_ text: String, model: String, for id: NoteID, bodySHA256: String? = nil) throws(NotesError) -> NoteSummary {
        let unsaved = "the summary of note \(id) was not saved"
        let trimmedModel = model.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmedModel.isEmpty else {
            throw NotesError(.invalidInput, "name the model that wrote the summary; \(unsaved)")
        }
        try checkDerivedText(text, noun: "summary", plural: "summaries", bodySHA256: bodySHA256, unsaved: unsaved)
        let now = nowMilliseconds
        return try write(unsaved: unsaved) { connection in
            let (hash, current) = try Self.bodyHashes(of: id, given: bodySHA256, connection)
            try connection.run("""
                INSERT INTO summaries (note_id, model, text, created_at, body_sha256) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (note_id, model) DO UPDATE
                SET text = excluded.text, created_at = excluded.created_at, body_sha256 = excluded.body_sha256
                """, [.integer(id.rawValue), .text(trimmedModel), .text(text), .integer(now), .text(hash)])
            return NoteSummary(noteID: id, text: text, model: trimmedModel, created: Timestamp.date(milliseconds: now),
                               bodySHA256: hash, isStale: hash != current)
        }
    }

    /// Checks text derived from a note (a summary, an extraction) before it is stored: not empty,
    /// within `maximumSummaryBytes`, and a well-formed body hash if one is given.
    private func checkDerivedText(_ text: String, noun: String, plural: String, bodySHA256: String?,
                                  unsaved: String) throws(NotesError) {
        guard !text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
            throw NotesError(.invalidInput, "the \(noun) is empty; \(unsaved)")
        }
        if let bodySHA256, !Self.isSHA256Hex(bodySHA256) {
            throw NotesError(.invalidInput, "the body hash must be 64 lowercase hexadecimal digits (NotesStore.bodySHA256), not '\(bodySHA256.prefix(70))'; \(unsaved)")
        }
        guard text.utf8.count <= configuration.maximumSummaryBytes else {
            throw NotesError(.tooLarge, "the \(noun) is \(ByteCount.format(text.utf8.count)); \(plural) hold at most \(ByteCount.format(configuration.maximumSummaryBytes)); \(unsaved)")
        }
    }

    /// The body hash to record (`given`, the body as a request started, or the body now) and the
    /// body's hash now; throws when the note does not exist.
    private static func bodyHashes(of id: NoteID, given: String?, _ connection: SQLiteConnection) throws -> (recorded: String, current: String) {
        guard let note = try fetchNote(id, connection) else { throw noSuchNote(id) }
        let current = bodyHash(note.body)
        return (given ?? current, current)
    }

    /// Stores `text` (a JSON document or a label) as `model`'s extraction of `kind` from the note,
    /// replacing the earlier one of that kind and model; versioned like `storeSummary`: it records
    /// `bodySHA256` (the body as the request started; default the body now) and is stale once the
    /// body changes.
    public func storeExtraction(_ text: String, kind: String, model: String, for id: NoteID,
                                bodySHA256: String? = nil) throws(NotesError) -> NoteExtraction {
        let unsaved = "the \(kind) of note \(id) was not saved"
        let trimmedKind = kind.trimmingCharacters(in: .whitespacesAndNewlines)
        let trimmedModel = model.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmedKind.isEmpty, !trimmedModel.isEmpty else {
            throw NotesError(.invalidInput, "name the kind of extraction and the model that made it; \(unsaved)")
        }
        try checkDerivedText(text, noun: "extraction", plural: "extractions", bodySHA256: bodySHA256, unsaved: unsaved)
        let now = nowMilliseconds
        return try write(unsaved: unsaved) { connection in
            let (hash, current) = try Self.bodyHashes(of: id, given: bodySHA256, connection)
            try connection.run("""
                INSERT INTO extractions (note_id, kind, model, text, created_at, body_sha256) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (note_id, kind, model) DO UPDATE
                SET text = excluded.text, created_at = excluded.created_at, body_sha256 = excluded.body_sha256
                """, [.integer(id.rawValue), .text(trimmedKind), .text(trimmedModel), .text(text), .integer(now), .text(hash)])
            return NoteExtraction(noteID: id, kind: trimmedKind, model: trimmedModel, text: text,
                                  created: Timestamp.date(milliseconds: now), bodySHA256: hash, isStale: hash != current)
        }
    }

    // MARK: Validation

    /// Refuses text the store does not keep: over the size limits, a title with a line break, NUL.
    func validate(title: String, body: String, unsaved: String) throws(NotesError) {
        let titleBytes = title.utf8.count, bodyBytes = body.utf8.count
        guard bodyBytes <= configuration.maximumBodyBytes else {
            throw NotesError(.tooLarge, "the body is \(ByteCount.format(bodyBytes)) but a note holds at most "
                + "\(ByteCount.format(configuration.maximumBodyBytes)); split it into smaller notes. \(Self.capitalized(unsaved)) and nothing stored was lost")
        }
        guard titleBytes <= configuration.maximumTitleBytes else {
            throw NotesError(.tooLarge, "the title is \(titleBytes) bytes but a title holds at most \(configuration.maximumTitleBytes); \(unsaved) and nothing stored was lost")
        }
        guard !title.contains(where: \.isNewline) else {
            throw NotesError(.invalidInput, "a title is one line, and this one has a line break; \(unsaved)")
        }
        guard !title.utf8.contains(0), !body.utf8.contains(0) else {
            throw NotesError(.invalidInput, "the text contains a NUL character, which notes cannot hold; \(unsaved)")
        }
    }

    func checkNotEmpty(title: String, body: String, unsaved: String) throws(NotesError) {
        if title.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, body.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw NotesError(.invalidInput, "a note needs a title or a body; \(unsaved)")
        }
    }

    /// Tags trimmed, checked and without duplicates (compared case-insensitively).
    func normalizedTags(_ names: [String], unsaved: String) throws(NotesError) -> [String] {
        var seen: Set<String> = []
        var tags: [String] = []
        for name in names {
            let tag = name.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !tag.isEmpty else { throw NotesError(.invalidInput, "a tag cannot be empty; \(unsaved)") }
            guard tag.count <= configuration.maximumTagCharacters else {
                throw NotesError(.tooLarge, "the tag '\(tag.prefix(20))…' is longer than \(configuration.maximumTagCharacters) characters; \(unsaved)")
            }
            guard !tag.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw NotesError(.invalidInput, "the tag '\(tag)' contains a control character; \(unsaved)")
            }
            if seen.insert(tag.lowercased()).inserted { tags.append(tag) }
        }
        return tags
    }

    static func describeNew(_ title: String) -> String {
        let shown = title.count > 40 ? title.prefix(40) + "…" : Substring(title)
        return shown.isEmpty ? "the new note" : "the new note “\(shown)”"
    }

    private static func capitalized(_ text: String) -> String {
        text.prefix(1).uppercased() + text.dropFirst()
    }

    static func noSuchNote(_ id: NoteID) -> NotesError {
        NotesError(.noSuchNote, "there is no note \(id)")
    }

    /// `ids` without repeats, in first-seen order.
    static func unique(_ ids: [NoteID]) -> [NoteID] {
        var seen: Set<NoteID> = []
        return ids.filter { seen.insert($0).inserted }
    }

    /// Throws ``NotesError/Code/noSuchNote`` naming every id in `ids` that has no note.
    static func requireNotes(_ ids: [NoteID], _ connection: SQLiteConnection, consequence: String) throws {
        var missing: [NoteID] = []
        for id in ids {
            if try fetchNote(id, connection) == nil { missing.append(id) }
        }
        guard !missing.isEmpty else { return }
        let list = missing.map { "\($0)" }.joined(separator: ", ")
        throw NotesError(.noSuchNote, missing.count == 1
            ? "there is no note \(list); \(consequence)"
            : "there are no notes \(list); \(consequence)")
    }

    static func bodyHash(_ body: String) -> String {
        SHA256.hexString(SHA256.hash(body.utf8))
    }

    /// The SHA-256 (lowercase hex) a summary of `body` records: take it from the body as a summary
    /// request starts and pass it to `storeSummary(_:model:for:bodySHA256:)`.
    public static func bodySHA256(_ body: String) -> String { bodyHash(body) }

    static func isSHA256Hex(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    // MARK: Statements shared by the writing methods

    /// The note, or `noSuchNote` / `noteInTrash`.
    static func editableNote(_ id: NoteID, _ connection: SQLiteConnection) throws -> Note {
        guard let note = try fetchNote(id, connection) else { throw noSuchNote(id) }
        guard !note.isInTrash else {
            throw NotesError(.noteInTrash, "note \(id) is in the trash; restore it before changing it")
        }
        return note
    }

    /// Inserts a checked draft; missing dates become `now` (updated defaults to created).
    static func insert(_ draft: NoteDraft, now: Int64, _ connection: SQLiteConnection) throws -> Note {
        let created = draft.created.map(Timestamp.milliseconds) ?? now
        let updated = draft.updated.map(Timestamp.milliseconds) ?? created
        try connection.run("""
            INSERT INTO notes (title, body, created_at, updated_at, pinned, archived) VALUES (?, ?, ?, ?, ?, ?)
            """, [.text(draft.title), .text(draft.body), .integer(created), .integer(updated),
                  .integer(draft.isPinned ? 1 : 0), .integer(draft.isArchived ? 1 : 0)])
        let id = NoteID(connection.lastInsertedRowID)
        try attach(draft.tags, to: id, connection)
        return try fetchNote(id, connection)!
    }

    static func attach(_ tags: [String], to id: NoteID, _ connection: SQLiteConnection) throws {
        for tag in tags {
            try connection.run("INSERT INTO tags (name) VALUES (?) ON CONFLICT (name) DO NOTHING", [.text(tag)])
            try connection.run("""
                INSERT OR IGNORE INTO note_tags (note_id, tag_id) SELECT ?, id FROM tags WHERE name = ?
                """, [.integer(id.rawValue), .text(tag)])
        }
    }

    static func forgetUnusedTags(_ connection: SQLiteConnection) throws {
        try connection.run("DELETE FROM tags WHERE id NOT IN (SELECT tag_id FROM note_tags)")
    }

    static func saveVersion(of note: Note, at time: Int64, _ connection: SQLiteConnection) throws {
        try connection.run("""
            INSERT INTO note_versions (note_id, number, title, body, saved_at)
            VALUES (?1, (SELECT coalesce(max(number), 0) + 1 FROM note_versions WHERE note_id = ?1), ?2, ?3, ?4)
            """, [.integer(note.id.rawValue), .text(note.title), .text(note.body), .integer(time)])
    }
}

import Foundation

/// A note's number in its database; never reused, even after the note is purged.
public struct NoteID: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }
    public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public var description: String { String(rawValue) }
    public static func < (lhs: NoteID, rhs: NoteID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// A stored note with its tags.
public struct Note: Sendable, Equatable, Identifiable {
    public var id: NoteID
    /// A line of plain text (may be empty when the body is not).
    public var title: String
    /// Markdown.
    public var body: String
    public var created: Date
    /// When the title, body, tags, pin or archive flag last changed.
    public var updated: Date
    public var isPinned: Bool
    public var isArchived: Bool
    /// When the note was moved to the trash; nil when it is not there.
    public var trashed: Date?
    /// Tag names, sorted case-insensitively.
    public var tags: [String]

    public var isInTrash: Bool { trashed != nil }
}

/// What `NotesStore.add` stores: everything but the id. Dates default to the store's clock.
public struct NoteDraft: Sendable, Equatable {
    public var title: String
    public var body: String
    public var tags: [String]
    public var isPinned: Bool
    public var isArchived: Bool
    public var created: Date?
    public var updated: Date?

    public init(title: String, body: String, tags: [String] = [], isPinned: Bool = false, isArchived: Bool = false,
                created: Date? = nil, updated: Date? = nil) {
        self.title = title
        self.body = body
        self.tags = tags
        self.isPinned = isPinned
        self.isArchived = isArchived
        self.created = created
        self.updated = updated
    }
}

/// The parts of a note `NotesStore.edit` changes; nil leaves a part as it is.
public struct NoteChange: Sendable, Equatable {
    public var title: String?
    public var body: String?
    public var isPinned: Bool?
    public var isArchived: Bool?

    public init(title: String? = nil, body: String? = nil, isPinned: Bool? = nil, isArchived: Bool? = nil) {
        self.title = title
        self.body = body
        self.isPinned = isPinned
        self.isArchived = isArchived
    }

    /// True when the change touches the title or the body (and so saves a version first).
    var changesText: Bool { title != nil || body != nil }
}

/// Which notes `NotesStore.notes(_:)` lists.
public struct NoteFilter: Sendable, Equatable {
    /// Which of the three places a note can be in.
    public enum Place: String, Sendable, CaseIterable {
        /// Not archived, not in the trash.
        case active
        /// Archived, not in the trash.
        case archived
        /// Active and archived notes.
        case all
        /// In the trash.
        case trash
    }

    public var place: Place
    /// Only notes with this tag (case-insensitive).
    public var tag: String?
    /// Only pinned notes.
    public var pinnedOnly: Bool
    public var limit: Int?

    public init(place: Place = .active, tag: String? = nil, pinnedOnly: Bool = false, limit: Int? = nil) {
        self.place = place
        self.tag = tag
        self.pinnedOnly = pinnedOnly
        self.limit = limit
    }
}

/// An earlier title and body of a note, saved just before an edit or a restore replaced them.
public struct NoteVersion: Sendable, Equatable {
    public var noteID: NoteID
    /// 1 for the first saved version, then 2, 3, …
    public var number: Int
    public var title: String
    public var body: String
    /// When this text was replaced.
    public var saved: Date
}

/// A summary of a note's body, with the model that wrote it.
public struct NoteSummary: Sendable, Equatable {
    public var noteID: NoteID
    public var text: String
    /// The model that wrote the summary, as the caller named it (e.g. "smollm2").
    public var model: String
    public var created: Date
    /// SHA-256 (hex) of the body the summary was written from.
    public var bodySHA256: String
    /// True when the note's body has changed since; the summary describes an older text.
    public var isStale: Bool
}

/// A structured extraction from a note's body (JSON valid against a schema) or its
/// classification (one label), with the model that made it and the body it was made from.
public struct NoteExtraction: Sendable, Equatable {
    public var noteID: NoteID
    /// What was extracted: the schema's name (e.g. "action-items") or "classification".
    public var kind: String
    public var model: String
    /// The JSON document, or the label.
    public var text: String
    public var created: Date
    /// SHA-256 (hex) of the body it was made from.
    public var bodySHA256: String
    /// True when the note's body has changed since.
    public var isStale: Bool
}

/// One search result: the note, a snippet around the match, and how it ranked.
public struct SearchHit: Sendable, Equatable {
    public var noteID: NoteID
    public var title: String
    public var updated: Date
    public var isPinned: Bool
    public var isArchived: Bool
    /// A few words around the match, with matched words between the style's markers.
    public var snippet: String
    /// SQLite's `bm25()` with the title weighted; more negative ranks higher.
    public var score: Double
    /// True when the title holds every searched word; such hits come before the others.
    public var titleMatches: Bool
}

/// How `NotesStore.search` marks matched words in snippets.
public struct SnippetStyle: Sendable, Equatable {
    public var open: String
    public var close: String
    public var ellipsis: String
    /// How many tokens a snippet holds (1…64, SQLite's limit).
    public var tokenCount: Int

    public init(open: String = "[", close: String = "]", ellipsis: String = "…", tokenCount: Int = 12) {
        self.open = open
        self.close = close
        self.ellipsis = ellipsis
        self.tokenCount = tokenCount
    }
}

/// A tag and how many notes outside the trash carry it.
public struct TagCount: Sendable, Equatable {
    public var name: String
    public var noteCount: Int
}

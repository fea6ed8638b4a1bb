import EmberCore
import Foundation

extension NotesStore {
    /// Writes every note outside the trash to `directory` as a Markdown file with YAML front matter
    /// (see ``MarkdownNoteFile``), one file per note, each written atomically.
    ///
    /// - Parameter overwrite: replace files of the same name; when false, an existing file stops
    ///   the export before anything is written.
    /// - Returns: the paths written, in note id order.
    @discardableResult
    public func exportMarkdown(to directory: String, overwrite: Bool = false) throws(NotesError) -> [String] {
        let notes = try notes(NoteFilter(place: .all)).sorted { $0.id < $1.id }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw NotesError(.fileSystem, "cannot create the directory \(directory): \(Self.reason(error)); nothing was exported")
        }
        let files = notes.map { (note: $0, path: (directory as NSString).appendingPathComponent(MarkdownNoteFile.fileName(for: $0))) }
        if !overwrite, let existing = files.first(where: { FileManager.default.fileExists(atPath: $0.path) }) {
            throw NotesError(.fileSystem, "\(existing.path) already exists; export into an empty directory or allow overwriting. Nothing was exported")
        }
        for (index, file) in files.enumerated() {
            do {
                try Data(MarkdownNoteFile.render(file.note).utf8).write(to: URL(fileURLWithPath: file.path), options: .atomic)
            } catch {
                throw NotesError(.fileSystem, "cannot write \(file.path): \(Self.reason(error)); \(index) of \(files.count) notes were exported before it, and the database is unchanged")
            }
        }
        return files.map(\.path)
    }

    /// Reads Markdown files (a directory stands for the `.md` files in it, sorted by name) and
    /// adds one note per file, all in one transaction: if any file is unreadable, not UTF-8, has bad
    /// front matter or is too large, nothing is imported. A file named in `paths` may be a pipe or a
    /// device (read up to the size limit); a file found in a directory must be a regular file.
    /// - Returns: the new notes, in file order.
    public func importMarkdown(from paths: [String]) throws(NotesError) -> [Note] {
        // Files named by the caller may be pipes or devices (read up to the limit); files found by
        // listing a directory must be regular files (a FIFO there would wait forever for a writer).
        var files: [(path: String, streams: BoundedRead.Streams)] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw NotesError(.fileSystem, "\(path) does not exist; nothing was imported")
            }
            if isDirectory.boolValue {
                let names: [String]
                do { names = try FileManager.default.contentsOfDirectory(atPath: path) } catch {
                    throw NotesError(.fileSystem, "cannot list \(path): \(Self.reason(error)); nothing was imported")
                }
                files += names.filter { $0.lowercased().hasSuffix(".md") }.sorted()
                    .map { ((path as NSString).appendingPathComponent($0), .refused) }
            } else {
                files.append((path, .allowed))
            }
        }
        // A note's body plus room for its front matter.
        let fileLimit = configuration.maximumBodyBytes + 64 * 1024
        let now = nowMilliseconds
        let count = files.count
        // Each file is read, checked and inserted in turn inside the one transaction, so memory holds
        // one file at a time however many there are; any failure rolls every insert back.
        return try write(unsaved: "none of the \(count) files was imported") { connection in
            var notes: [Note] = []
            for (file, streams) in files {
                let draft = try checkedDraft(file, streams: streams, limit: fileLimit)
                notes.append(try Self.insert(draft, now: now, connection))
            }
            return notes
        }
    }

    /// The note in the Markdown file at `path`, read (at most `limit` bytes) and checked as `add` checks it.
    private func checkedDraft(_ file: String, streams: BoundedRead.Streams, limit: Int) throws(NotesError) -> NoteDraft {
        let data: [UInt8]
        do {
            data = try BoundedRead.file(atPath: file, limit: limit, streams: streams)
        } catch {
            throw NotesError(error, limit: limit, holder: "a note file", consequence: "nothing was imported")
        }
        let text = try UTF8Text.decode(data, source: file, consequence: "nothing was imported")
        let draft = try MarkdownNoteFile.parse(text, source: file)
        let unsaved = "\(file) was not imported, so nothing was"
        try validate(title: draft.title, body: draft.body, unsaved: unsaved)
        try checkNotEmpty(title: draft.title, body: draft.body, unsaved: unsaved)
        var checked = draft
        checked.tags = try normalizedTags(draft.tags, unsaved: unsaved)
        return checked
    }

    private static func reason(_ error: any Error) -> String {
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        if let underlying, underlying.domain == NSPOSIXErrorDomain, let code = POSIXErrorCode(rawValue: Int32(underlying.code)) {
            return String(cString: strerror(code.rawValue))
        }
        return (error as NSError).localizedDescription
    }
}

import EmberCore
import EmberNotes
import Foundation

/// A note to summarize and the summary a person wrote for it.
public struct SummaryExample: Sendable, Equatable {
    /// The file name without `.md`, e.g. `03-lentil-soup`.
    public var name: String
    public var title: String
    /// The note's Markdown body (without front matter).
    public var text: String
    /// The reference summary.
    public var reference: String
}

/// A directory of `NN-slug.md` notes (YAML front matter and Markdown, as `ember notes export`
/// writes them), each with its reference summary in `NN-slug.summary.txt`.
public enum SummaryDataset: Sendable {
    /// Every note in `directory` with its summary, in file name order.
    public static func load(directory: String) throws(EvaluationError) -> [SummaryExample] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw EvaluationError(.datasetNotFound, "cannot list the dataset directory \(directory)")
        }
        let notes = names.filter { $0.hasSuffix(".md") }.sorted()
        guard !notes.isEmpty else { throw EvaluationError(.datasetNotFound, "\(directory) holds no .md notes") }
        var examples: [SummaryExample] = []
        for file in notes {
            let name = String(file.dropLast(3))
            let notePath = (directory as NSString).appendingPathComponent(file)
            let summaryPath = (directory as NSString).appendingPathComponent(name + ".summary.txt")
            let noteText = try read(notePath)
            guard FileManager.default.fileExists(atPath: summaryPath) else {
                throw EvaluationError(.invalidDataset, "\(notePath) has no reference summary; write one in \(summaryPath)")
            }
            let reference = try read(summaryPath).trimmingCharacters(in: .whitespacesAndNewlines)
            guard !reference.isEmpty else { throw EvaluationError(.invalidDataset, "\(summaryPath) is empty") }
            let parsed = Result { () throws(NotesError) -> NoteDraft in try MarkdownNoteFile.parse(noteText, source: notePath) }
            let draft = try parsed.mapError { EvaluationError(.invalidDataset, $0.message) }.get()
            examples.append(SummaryExample(name: name, title: draft.title, text: draft.body, reference: reference))
        }
        return examples
    }

    private static func read(_ path: String) throws(EvaluationError) -> String {
        let data: Data
        do {
            // A note holds at most 2 MiB; its reference summary far less.
            data = Data(try BoundedRead.file(atPath: path, limit: 2 << 20, streams: .refused))
        } catch {
            throw EvaluationError(.invalidDataset, error.message)
        }
        let decoded = Result { () throws(NotesError) -> String in
            try UTF8Text.decode(data, source: path, consequence: "the dataset was not loaded")
        }
        return try decoded.mapError { EvaluationError(.invalidDataset, $0.message) }.get()
    }
}

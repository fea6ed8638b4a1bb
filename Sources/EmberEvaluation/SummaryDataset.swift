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
    /// The part of the dataset it belongs to (`split.txt`).
    public var split: DatasetSplit
}

/// The parts of a dataset: methods and prompts are tuned on one and reported on the other.
public enum DatasetSplit: String, Sendable, Equatable, CaseIterable {
    case tune
    case heldout
}

/// A directory of `NN-slug.md` notes (YAML front matter and Markdown, as `ember notes export`
/// writes them), each with its reference summary in `NN-slug.summary.txt`, and `split.txt`
/// saying which part each note belongs to: one `tune NAME` or `heldout NAME` line per note
/// (`#` starts a comment). Without `split.txt` every note is `heldout`.
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
        let splitPath = (directory as NSString).appendingPathComponent("split.txt")
        let splits = FileManager.default.fileExists(atPath: splitPath)
            ? try parseSplit(read(splitPath), path: splitPath, names: notes.map { String($0.dropLast(3)) }) : nil
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
            examples.append(SummaryExample(name: name, title: draft.title, text: draft.body, reference: reference,
                                           split: splits?[name] ?? .heldout))
        }
        return examples
    }

    /// The part of each note named in `text`; every note of `names` must be named exactly once and
    /// nothing else may be.
    static func parseSplit(_ text: String, path: String, names: [String]) throws(EvaluationError) -> [String: DatasetSplit] {
        var splits: [String: DatasetSplit] = [:]
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty, !line.hasPrefix("#") else { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count == 2, let split = DatasetSplit(rawValue: String(fields[0])) else {
                throw EvaluationError(.invalidDataset, "\(path) line \(number + 1): write 'tune NAME' or 'heldout NAME', not '\(line.prefix(60))'")
            }
            let name = String(fields[1])
            guard splits.updateValue(split, forKey: name) == nil else {
                throw EvaluationError(.invalidDataset, "\(path) line \(number + 1): \(name) is listed twice")
            }
        }
        let known = Set(names)
        if let unknown = splits.keys.sorted().first(where: { !known.contains($0) }) {
            throw EvaluationError(.invalidDataset, "\(path) lists \(unknown), but the dataset has no \(unknown).md")
        }
        if let missing = names.first(where: { splits[$0] == nil }) {
            throw EvaluationError(.invalidDataset, "\(path) does not say whether \(missing) is tuned on or held out; add 'tune \(missing)' or 'heldout \(missing)'")
        }
        return splits
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

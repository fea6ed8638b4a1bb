import EmberEvaluation
import EmberNotes
import Foundation
import Testing

/// The notes dataset under Tests/Fixtures/notes-dataset: its size and variety, that every note
/// imports, and that every reference summary belongs to its note.
struct NotesDatasetTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/notes-dataset").path

    static func wordCount(_ text: String) -> Int {
        text.split(whereSeparator: { $0.isWhitespace }).filter { $0.contains(where: { $0.isLetter || $0.isNumber }) }.count
    }

    /// Sentences end in . ! or ? before a space or the end, except after a title like "Dr.".
    static func sentenceCount(_ text: String) -> Int {
        let abbreviations: Set<String> = ["dr.", "mr.", "mrs.", "ms.", "e.g.", "i.e.", "st."]
        let words = text.split(separator: " ")
        return words.filter { word in
            guard let last = word.last, ".!?".contains(last) else { return false }
            return !abbreviations.contains(word.lowercased())
        }.count
    }

    @Test("at least 30 notes, each with a summary of one to three sentences shorter than the note")
    func shape() throws {
        let examples = try SummaryDataset.load(directory: Self.directory)
        #expect(examples.count >= 30)
        #expect(Set(examples.map(\.name)).count == examples.count)
        for example in examples {
            #expect(example.name.range(of: #"^\d\d-[a-z0-9-]+$"#, options: .regularExpression) != nil, "\(example.name)")
            #expect(!example.title.isEmpty, "\(example.name) has a title")
            #expect((1...3).contains(Self.sentenceCount(example.reference)), "\(example.name): \(example.reference)")
            #expect(Self.wordCount(example.reference) < Self.wordCount(example.text) / 2 + 20, "\(example.name)")
        }
    }

    @Test("varied: long notes, headings, lists, tables and accents")
    func variety() throws {
        let examples = try SummaryDataset.load(directory: Self.directory)
        let long = examples.filter { Self.wordCount($0.text) >= 1500 }
        #expect(long.count >= 3, "\(long.map(\.name))")
        #expect(examples.filter { $0.text.split(separator: "\n").contains { $0.hasPrefix("#") } }.count >= 10)
        #expect(examples.filter { $0.text.split(separator: "\n").contains { $0.hasPrefix("- ") } }.count >= 15)
        #expect(examples.filter { $0.text.split(separator: "\n").contains { $0.first?.isNumber == true && $0.contains(". ") } }.count >= 5)
        #expect(examples.filter { $0.text.contains("|---") || $0.text.contains("|------") }.count >= 2)
        #expect(examples.filter { ($0.title + $0.text).unicodeScalars.contains { !$0.isASCII && $0.properties.isAlphabetic } }.count >= 5)
        let shortest = try #require(examples.map { Self.wordCount($0.text) }.min())
        #expect(shortest < 80)
    }

    @Test("every note imports into a notes store, and search finds the accented title")
    func imports() throws {
        let examples = try SummaryDataset.load(directory: Self.directory)
        let database = (NSTemporaryDirectory() as NSString).appendingPathComponent("dataset-\(UUID().uuidString).db")
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: database + suffix) } }
        let store = try NotesStore(path: database)
        let notes = try store.importMarkdown(from: [Self.directory])
        #expect(notes.count == examples.count)
        #expect(notes.map(\.title) == examples.map(\.title))
        #expect(try store.search("cafe resume").first?.title == "Café résumé")
    }

    static let stopWords: Set<String> = [
        "a", "an", "and", "are", "as", "at", "be", "before", "but", "by", "for", "from", "has", "have", "in", "is",
        "it", "its", "more", "of", "on", "or", "so", "than", "that", "the", "their", "then", "there", "this", "to",
        "up", "was", "what", "when", "which", "while", "who", "will", "with",
    ]

    /// The share of the summary's content words (no stop words) that occur in `text`.
    static func contentRecall(summary: String, text: String) -> Double {
        let words = ROUGE.tokens(summary).filter { !stopWords.contains($0) }
        let vocabulary = Set(ROUGE.tokens(text))
        return Double(words.filter(vocabulary.contains).count) / Double(max(1, words.count))
    }

    @Test("each reference summary shares more of its content words with its own note than with any other")
    func summariesMatchTheirNotes() throws {
        let examples = try SummaryDataset.load(directory: Self.directory)
        for example in examples {
            let scores = examples.map { Self.contentRecall(summary: example.reference, text: $0.title + "\n" + $0.text) }
            let best = try #require(scores.indices.max { scores[$0] < scores[$1] })
            #expect(examples[best].name == example.name, "\(example.name)'s summary fits \(examples[best].name) better")
        }
    }

    @Test("a note without a summary is reported by name")
    func missingSummary() throws {
        let directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("dataset-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("---\ntitle: Lonely\n---\nno summary".utf8).write(to: URL(fileURLWithPath: directory + "/01-lonely.md"))
        let error = try #require(throws: EvaluationError.self) { try SummaryDataset.load(directory: directory) }
        #expect(error.code == .invalidDataset)
        #expect(error.message.contains("01-lonely.md has no reference summary"))
    }
}

import EmberEvaluation
import Foundation
import Testing

@Suite("Summary scores, the lead baseline and dataset splits")
struct SummaryScoresTests {
    @Test func leadBaselineTakesTheFirstWords() {
        #expect(LeadBaseline.summary("one two\n\nthree  four", words: 3) == "one two three")
        #expect(LeadBaseline.summary("short", words: 40) == "short")
        #expect(LeadBaseline.summary("", words: 40) == "")
    }

    @Test func scoresAreMeansAndRates() {
        var scores = SummaryScores()
        let perfect = ROUGE.scores(candidate: "milk and eggs", reference: "milk and eggs")
        let none = ROUGE.scores(candidate: "tea", reference: "milk and eggs")
        scores.add(SummaryMeasurement(rouge: perfect, faithfulness: 1, loops: false, echoes: false, words: 3, seconds: 1, joules: 2))
        scores.add(SummaryMeasurement(rouge: none, faithfulness: 0.5, loops: true, echoes: false, fellBack: true, words: 1, seconds: 3, joules: 4))
        #expect(scores.count == 2)
        #expect(scores.rougeL == 0.5)
        #expect(scores.faithfulness == 0.75)
        #expect(scores.minimumFaithfulness == 0.5)
        #expect(scores.loopRate == 0.5 && scores.echoRate == 0 && scores.fallbackRate == 0.5)
        #expect(scores.meanWords == 2 && scores.meanSeconds == 2 && scores.meanJoules == 3)
    }

    private func dataset(_ split: String?) throws -> String {
        let path = NSTemporaryDirectory() + "ember-split-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        for name in ["01-a", "02-b"] {
            try "---\ntitle: \(name)\n---\nSome text of \(name).".write(toFile: "\(path)/\(name).md", atomically: true, encoding: .utf8)
            try "Text \(name).".write(toFile: "\(path)/\(name).summary.txt", atomically: true, encoding: .utf8)
        }
        if let split { try split.write(toFile: path + "/split.txt", atomically: true, encoding: .utf8) }
        return path
    }

    @Test func theSplitFileAssignsEveryNoteOnce() throws {
        let good = try dataset("# comment\ntune 01-a\nheldout 02-b\n")
        defer { try? FileManager.default.removeItem(atPath: good) }
        #expect(try SummaryDataset.load(directory: good).map(\.split) == [.tune, .heldout])

        let none = try dataset(nil)
        defer { try? FileManager.default.removeItem(atPath: none) }
        #expect(try SummaryDataset.load(directory: none).allSatisfy { $0.split == .heldout })

        for (text, fragment) in [("tune 01-a\n", "does not say whether 02-b"), ("tune 01-a\nheldout 02-b\ntune 03-c\n", "no 03-c.md"),
                                 ("tune 01-a\ntune 01-a\nheldout 02-b\n", "listed twice"), ("train 01-a\nheldout 02-b\n", "line 1")] {
            let path = try dataset(text)
            defer { try? FileManager.default.removeItem(atPath: path) }
            let error = try #require(throws: EvaluationError.self) { try SummaryDataset.load(directory: path) }
            #expect(error.code == .invalidDataset)
            #expect(error.message.contains(fragment), "\(error.message)")
        }
    }

    @Test func theNotesDatasetHasBothParts() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/notes-dataset").path
        let examples = try SummaryDataset.load(directory: directory)
        #expect(examples.filter { $0.split == .tune }.count >= 30)
        #expect(examples.filter { $0.split == .heldout }.count >= 14)
    }
}

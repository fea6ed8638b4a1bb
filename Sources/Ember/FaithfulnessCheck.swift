import EmberCore
import Foundation

/// How much of a summary its note supports.
public struct FaithfulnessReport: Sendable, Equatable {
    /// Content words of the summary (not numbers or names), and how many the note has (any form
    /// of the word: "softened" is supported by "soften").
    public var contentWords: Int
    public var supportedContentWords: Int
    /// Numbers and names (capitalized words inside a sentence) of the summary, and how many the
    /// note has. "ten" counts as "10" and back.
    public var numbersAndNames: Int
    public var supportedNumbersAndNames: Int
    /// What the note does not support, for people reading a rejected summary.
    public var unsupported: [String]

    /// Share of the checked words (content words, numbers and names) the note supports; 1 when
    /// there is nothing to check.
    public var score: Double {
        let total = contentWords + numbersAndNames
        return total == 0 ? 1 : Double(supportedContentWords + supportedNumbersAndNames) / Double(total)
    }

    /// Share of the content words supported (1 when there are none).
    public var contentShare: Double { contentWords == 0 ? 1 : Double(supportedContentWords) / Double(contentWords) }
}

/// The faithfulness check of the summary pipeline: numbers, dates and names in a summary must
/// occur in the note, and most of its content words must. ROUGE rewards copying and cannot see
/// invention; this check is what keeps "a delay in the payment service" out of a note that never
/// mentioned one.
public struct FaithfulnessCheck: Sendable, Equatable {
    /// The least share of content words the note must support for a summary to pass.
    public var minimumContentShare: Double

    public init(minimumContentShare: Double = 0.85) {
        self.minimumContentShare = minimumContentShare
    }

    /// The report for `summary` against `source` (the note's title and body).
    public func report(summary: String, source: String) -> FaithfulnessReport {
        let sourceWords = WordTokens.of(Self.folded(source))
        let sourceSet = Set(sourceWords)
        let sourceStems = Set(sourceWords.map(SummaryText.stem))
        var report = FaithfulnessReport(contentWords: 0, supportedContentWords: 0, numbersAndNames: 0,
                                        supportedNumbersAndNames: 0, unsupported: [])
        for (word, isName) in Self.words(of: Self.folded(summary)) {
            if SummaryText.isNumber(word) || isName {
                report.numbersAndNames += 1
                let equivalent = SummaryText.numberWords[word]
                if sourceSet.contains(word) || equivalent.map(sourceSet.contains) == true || Self.spelledNumber(word, in: sourceSet) {
                    report.supportedNumbersAndNames += 1
                } else {
                    report.unsupported.append(word)
                }
            } else if !SummaryText.stopWords.contains(word), !Self.descriptiveWords.contains(word) {
                report.contentWords += 1
                let stem = SummaryText.stem(word)
                if sourceStems.contains(stem) || SummaryText.numberWords[word].map(sourceSet.contains) == true
                    || (stem.count >= 6 && sourceStems.contains { $0.count >= 6 && ($0.hasPrefix(stem) || stem.hasPrefix($0)) }) {
                    report.supportedContentWords += 1
                } else {
                    report.unsupported.append(word)
                }
            }
        }
        return report
    }

    /// True when every number and name is supported and enough content words are.
    public func passes(_ report: FaithfulnessReport) -> Bool {
        report.supportedNumbersAndNames == report.numbersAndNames && report.contentShare >= minimumContentShare
    }

    /// `text` without accents, so "resume" is supported by "résumé".
    static func folded(_ text: String) -> String {
        text.folding(options: [.diacriticInsensitive], locale: nil)
    }

    /// Words a summary uses to describe the note itself ("This note lists…"), not its content.
    static let descriptiveWords: Set<String> = ["note", "notes", "summary", "summarizes", "lists", "list", "describes", "mentions", "includes", "including"]

    /// Whether the digits `word` are written out in the source ("10" as "ten").
    private static func spelledNumber(_ word: String, in source: Set<String>) -> Bool {
        SummaryText.numberWords.contains { $0.value == word && source.contains($0.key) }
    }

    /// The summary's words (lowercased) and whether each is a name: capitalized and not the
    /// first word of a sentence (or "I").
    static func words(of text: String) -> [(String, Bool)] {
        var result: [(String, Bool)] = []
        var current = ""
        var currentCapitalized = false
        var sentenceStart = true
        var startsSentence = true
        func flush() {
            guard !current.isEmpty else { return }
            let lower = current.lowercased()
            result.append((lower, currentCapitalized && !startsSentence && lower != "i"))
            current = ""
        }
        for character in text {
            if character.isLetter || character.isNumber {
                if current.isEmpty {
                    currentCapitalized = character.isUppercase
                    startsSentence = sentenceStart
                    sentenceStart = false
                }
                current.append(character)
            } else {
                flush()
                if ".!?:;\n".contains(character) { sentenceStart = true }
            }
        }
        flush()
        return result
    }
}

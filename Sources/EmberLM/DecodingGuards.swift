import EmberCore
import Foundation

/// Where a generation should end, judged from its text as it grows (the token limit and
/// end-of-generation tokens stay the generator's own rules).
///
/// Small models rarely stop by themselves once they have said what they had to say: they start a
/// second paragraph, a new "Note:" of a few-shot prompt, or the same line again. These rules end
/// the text at the first such boundary.
public struct StopRules: Sendable, Equatable {
    /// Stop at the first blank line after some text: the end of the first paragraph.
    public var endOfParagraph: Bool
    /// Stop at the first line break after some text.
    public var endOfLine: Bool
    /// Stop once this many sentences are complete (nil: no bound).
    public var maximumSentences: Int?
    /// Stop once the text holds this many words (nil: no bound).
    public var maximumWords: Int?
    /// Stop before the first of these strings (e.g. the next label of a few-shot prompt).
    public var stopStrings: [String]

    public init(endOfParagraph: Bool = true, endOfLine: Bool = false, maximumSentences: Int? = nil,
                maximumWords: Int? = nil, stopStrings: [String] = []) {
        self.endOfParagraph = endOfParagraph
        self.endOfLine = endOfLine
        self.maximumSentences = maximumSentences
        self.maximumWords = maximumWords
        self.stopStrings = stopStrings
    }
}

/// Why a `DecodingGuard` ended a generation.
public enum GuardStop: String, Sendable, Equatable, CaseIterable {
    case endOfParagraph = "end-of-paragraph"
    case endOfLine = "end-of-line"
    case sentenceLimit = "sentence-limit"
    case wordLimit = "word-limit"
    case stopString = "stop-string"
    /// The text repeats itself (`RepetitionCheck`).
    case loop
    /// The text repeats the prompt's instruction or scaffolding (`EchoCheck`).
    case echo
}

/// Watches a generation's text piece by piece and says when to stop: the `StopRules`, a loop
/// (`RepetitionCheck`) or an echo of the prompt's own words (`EchoCheck`). Any caller can use
/// it: the generator's loop (`GenerationRequest.decodingGuard`) or a consumer of a token stream,
/// which drops the stream when `append` says stop.
public struct DecodingGuard: Sendable, Equatable {
    public var rules: StopRules
    /// Texts the output must not repeat (the instruction, labels, few-shot examples); a run of
    /// `echoRunWords` words of any of them in the output is an echo.
    public var echoSources: [String]
    public var echoRunWords: Int
    /// Everything appended so far.
    public private(set) var text = ""
    /// Why it stopped, once it has.
    public private(set) var stop: GuardStop?
    /// The text up to the stop point (all of `text` while running, or when stopped by a loop or
    /// an echo: the caller decides what to do with such output).
    public private(set) var keptText = ""

    public init(rules: StopRules = StopRules(), echoSources: [String] = [], echoRunWords: Int = 5) {
        self.rules = rules
        self.echoSources = echoSources
        self.echoRunWords = max(2, echoRunWords)
    }

    /// Adds the text of the next token; true when the generation should stop here.
    public mutating func append(_ piece: String) -> Bool {
        guard stop == nil else { return true }
        text += piece
        keptText = text
        if let (reason, end) = ruleStop() {
            stop = reason
            keptText = String(text[..<end])
            return true
        }
        if RepetitionCheck.isLooping(text) {
            stop = .loop
            return true
        }
        if !echoSources.isEmpty, echoSources.contains(where: { EchoCheck.sharedRun(text, $0) >= echoRunWords }) {
            stop = .echo
            return true
        }
        return false
    }

    /// The first rule boundary in `text`, and where to cut.
    private func ruleStop() -> (GuardStop, String.Index)? {
        let leading = text.firstIndex { !$0.isWhitespace } ?? text.endIndex
        let body = text[leading...]
        for stopString in rules.stopStrings where !stopString.isEmpty {
            if let range = body.range(of: stopString) { return (.stopString, range.lowerBound) }
        }
        if rules.endOfParagraph, let range = body.range(of: "\n\n") { return (.endOfParagraph, range.lowerBound) }
        if rules.endOfLine, let index = body.firstIndex(of: "\n") { return (.endOfLine, index) }
        if let limit = rules.maximumWords {
            var count = 0
            var inWord = false
            for index in body.indices {
                let isWord = !body[index].isWhitespace
                if isWord, !inWord {
                    count += 1
                    if count > limit { return (.wordLimit, index) }
                }
                inWord = isWord
            }
        }
        if let limit = rules.maximumSentences, limit > 0 {
            var count = 0
            var index = body.startIndex
            while index < body.endIndex {
                let next = body.index(after: index)
                // A sentence ends at . ! ? followed by white space (so "3.5" and "e.g." inside a word do not).
                if ".!?".contains(body[index]), next < body.endIndex, body[next].isWhitespace {
                    count += 1
                    if count >= limit { return (.sentenceLimit, next) }
                }
                index = next
            }
        }
        return nil
    }
}

/// Whether a text repeats itself the way a looping model does.
public enum RepetitionCheck: Sendable {
    /// True when a run of `phraseWords` words occurs `phraseCount` times or more, or a sentence or
    /// line of three or more words occurs twice. People's summaries never do either; a model stuck
    /// in a loop ("The cache is a memory unit. The cache is a memory unit.") does within a few lines.
    public static func isLooping(_ text: String, phraseWords: Int = 4, phraseCount: Int = 3) -> Bool {
        let words = wordTokens(text)
        if words.count >= phraseWords * phraseCount {
            var counts: [ArraySlice<String>: Int] = [:]
            for start in 0...(words.count - phraseWords) {
                let phrase = words[start..<(start + phraseWords)]
                counts[phrase, default: 0] += 1
                if counts[phrase]! >= phraseCount { return true }
            }
        }
        var seen: Set<[String]> = []
        for sentence in sentences(text) {
            let tokens = wordTokens(String(sentence))
            guard tokens.count >= 3 else { continue }
            if !seen.insert(tokens).inserted { return true }
        }
        return false
    }

    /// Sentences and lines: pieces between . ! ? and line breaks.
    static func sentences(_ text: String) -> [Substring] {
        text.split { ".!?\n".contains($0) }.filter { !$0.allSatisfy(\.isWhitespace) }
    }
}

/// Whether an output repeats its prompt instead of answering it.
public enum EchoCheck: Sendable {
    /// The longest run of consecutive words (lowercased letters and digits) that `output` and
    /// `source` share.
    public static func sharedRun(_ output: String, _ source: String) -> Int {
        let first = wordTokens(output), second = wordTokens(source)
        guard !first.isEmpty, !second.isEmpty else { return 0 }
        var previous = [Int](repeating: 0, count: second.count + 1)
        var current = previous
        var best = 0
        for word in first {
            for (index, other) in second.enumerated() {
                current[index + 1] = word == other ? previous[index] + 1 : 0
                best = max(best, current[index + 1])
            }
            swap(&previous, &current)
        }
        return best
    }

    /// True when `output` holds a run of `runWords` words of any of `scaffolding` (an instruction,
    /// prompt labels, few-shot examples), or a line that starts with one of `labels` ("Title:",
    /// "Note:"): the model is writing the prompt again.
    public static func echoes(_ output: String, scaffolding: [String], runWords: Int = 5, labels: [String] = []) -> Bool {
        if scaffolding.contains(where: { sharedRun(output, $0) >= runWords }) { return true }
        let lines = output.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        return labels.contains { label in lines.contains { $0.hasPrefix(label.lowercased()) } }
    }
}

func wordTokens(_ text: String) -> [String] { WordTokens.of(text) }

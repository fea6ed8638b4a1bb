import EmberCore
import Foundation

/// A summary made of the note's own most salient sentences and list items, shortened to their
/// content: no model, no invention, a few milliseconds. It is a summary on its own, the input of
/// the abstractive stage, and what replaces an abstractive summary that fails the checks.
///
/// 1. **Units.** The body is cut into sentences (prose) and items (list lines, table rows);
///    headings become their section's context, labels ending in ":" are dropped, and Markdown
///    marks, parentheticals and trailing dash asides ("coffee beans — the dark roast…") are removed.
/// 2. **Score.** Each unit scores by salience (mean log frequency of its content words in the
///    note), centrality (cosine similarity of its word vector with the whole note's), position
///    (earlier is better, as in most notes), words shared with the title, numbers, and a penalty
///    for fragments of fewer than four words.
/// 3. **Select.** Greedily, the best unit minus its redundancy with those already chosen
///    (maximal marginal relevance), until a word budget that grows with the logarithm of the
///    note's length (≈ 50 words for 100, ≈ 95 for 1,600, as people's summaries do).
/// 4. **Order.** The chosen units in the note's order, after the title when the units do not
///    already say it.
///
/// The weights were tuned on the `tune` part of `Tests/Fixtures/notes-dataset` only.
public struct ExtractiveSummarizer: Sendable {
    /// Weights and switches; the defaults are the tuned ones.
    public struct Configuration: Sendable, Equatable {
        /// Multiplies the word budget.
        public var lengthScale = 1.0
        /// The budget may be exceeded by this factor to fit a whole unit.
        public var slack = 1.15
        public var salienceWeight = 1.0
        public var centralityWeight = 1.0
        public var positionWeight = 0.5
        public var titleWeight = 0.5
        public var numberWeight = 0.1
        /// Subtracted from units of fewer than `minimumWords` words.
        public var fragmentPenalty = 0.5
        public var minimumWords = 4
        /// Weight of a unit's largest similarity with the units already chosen.
        public var redundancyWeight = 1.5
        /// Remove "(…)" asides that carry no fact (see `carriesFact`).
        public var dropsParentheses = true
        /// Remove a trailing " — …" aside that carries no fact.
        public var dropsDashAsides = true
        /// Begin with the title when the chosen units do not contain its words.
        public var leadsWithTitle = true

        public init() {}
    }

    /// A sentence or list item of the note.
    public struct Unit: Sendable, Equatable {
        /// The text, shortened to its content.
        public var text: String
        /// Position among the note's units, from 0.
        public var index: Int
        /// The heading it sits under ("" before any).
        public var section: String
        public var isListItem: Bool
    }

    public var configuration: Configuration

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Words a summary of a note of `noteWords` words may hold.
    public func wordBudget(noteWords: Int) -> Int {
        max(12, Int(configuration.lengthScale * (15 * log(Double(max(noteWords, 20))) - 18)))
    }

    /// The summary of the note titled `title` with body `text` ("" when the note has no words).
    public func summarize(title: String, text: String) -> String {
        summarize(title: title, units: units(of: text), noteWords: text.split(whereSeparator: \.isWhitespace).count)
    }

    /// The units `summarize` would choose, in the note's order.
    public func select(title: String, text: String) -> [Unit] {
        select(title: title, units: units(of: text), noteWords: text.split(whereSeparator: \.isWhitespace).count)
    }

    func summarize(title: String, units: [Unit], noteWords: Int) -> String {
        let chosen = select(title: title, units: units, noteWords: noteWords)
        var summary = chosen.map { unit -> String in
            let text = unit.text.trimmingCharacters(in: .whitespaces)
            return ".!?".contains(text.last ?? " ") ? text : text + "."
        }.joined(separator: " ")
        let titleText = title.trimmingCharacters(in: .whitespacesAndNewlines)
        if configuration.leadsWithTitle, !titleText.isEmpty,
           !Set(SummaryText.contentStems(titleText)).isSubset(of: Set(SummaryText.contentStems(summary))) {
            var lead = titleText
            while let last = lead.last, ".:;,".contains(last) { lead.removeLast() }
            summary = summary.isEmpty ? lead + "." : lead + ": " + summary
        }
        return summary
    }

    func select(title: String, units: [Unit], noteWords: Int) -> [Unit] {
        guard !units.isEmpty else { return [] }
        let stems = units.map { SummaryText.contentStems($0.text) }
        let vectors = stems.map { Dictionary($0.map { ($0, 1.0) }, uniquingKeysWith: +) }
        var frequency: [String: Double] = [:]
        for list in stems { for stem in list { frequency[stem, default: 0] += 1 } }
        let titleStems = Set(SummaryText.contentStems(title))
        let scores: [Double] = units.indices.map { index in
            let unique = Set(stems[index])
            guard !unique.isEmpty else { return -1 }
            let salience = unique.reduce(0.0) { $0 + log(1 + (frequency[$1] ?? 0)) } / Double(unique.count)
            let centrality = Self.cosine(vectors[index], frequency)
            let position = 1 / (1 + Double(index)).squareRoot()
            let titleShare = titleStems.isEmpty ? 0 : Double(titleStems.intersection(unique).count) / Double(titleStems.count)
            let hasNumber = units[index].text.contains { $0.isNumber } ? 1.0 : 0
            let isFragment = WordTokens.of(units[index].text).count < configuration.minimumWords
            return configuration.salienceWeight * salience + configuration.centralityWeight * centrality
                + configuration.positionWeight * position + configuration.titleWeight * titleShare
                + configuration.numberWeight * hasNumber - (isFragment ? configuration.fragmentPenalty : 0)
        }
        let budget = wordBudget(noteWords: noteWords)
        let wordCounts = units.map { $0.text.split(whereSeparator: \.isWhitespace).count }
        var chosen: [Int] = []
        var used = 0
        while used < budget {
            var best: Int?
            var bestValue = -Double.infinity
            for index in units.indices where scores[index] >= 0 && !chosen.contains(index) {
                guard Double(used + wordCounts[index]) <= Double(budget) * configuration.slack else { continue }
                let redundancy = chosen.map { Self.cosine(vectors[index], vectors[$0]) }.max() ?? 0
                let value = scores[index] - configuration.redundancyWeight * redundancy
                if value > bestValue {
                    bestValue = value
                    best = index
                }
            }
            guard let best else { break }
            chosen.append(best)
            used += wordCounts[best]
        }
        return chosen.sorted().map { units[$0] }
    }

    static func cosine(_ first: [String: Double], _ second: [String: Double]) -> Double {
        var dot = 0.0
        for (word, weight) in first { dot += weight * (second[word] ?? 0) }
        let norms = (first.values.reduce(0) { $0 + $1 * $1 } * second.values.reduce(0) { $0 + $1 * $1 }).squareRoot()
        return norms > 0 ? dot / norms : 0
    }

    // MARK: Units

    /// The note's sentences and list items, shortened to their content.
    public func units(of text: String) -> [Unit] {
        var units: [Unit] = []
        var section = ""
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            guard !line.isEmpty else { continue }
            if line.hasPrefix("#") {
                section = Self.plain(String(line.drop { $0 == "#" }))
                continue
            }
            if Self.isTableRule(line) || line == "---" || line == "***" { continue }
            var pieces: [(String, Bool)] = []
            if line.hasPrefix("|") {
                let cells = line.split(separator: "|").map { Self.plain(String($0)) }.filter { !$0.isEmpty }
                pieces = [(cells.joined(separator: ", "), true)]
            } else if let item = Self.listItemText(line) {
                pieces = [(Self.plain(item), true)]
            } else {
                pieces = Self.sentences(Self.plain(line)).map { ($0, false) }
            }
            for (piece, isListItem) in pieces {
                // A label introducing a list ("Good:", "Action items:") says nothing by itself.
                guard !piece.hasSuffix(":") else { continue }
                let shortened = shorten(piece)
                guard !WordTokens.of(shortened).isEmpty else { continue }
                units.append(Unit(text: shortened, index: units.count, section: section, isListItem: isListItem))
            }
        }
        return units
    }

    /// `text` without the parenthetical and trailing dash asides that carry no fact. An aside with a
    /// number, time, date or name ("(Saturday 07:40 from Gare de Lyon)", "— due 3 May") is what a
    /// reader would look the note up for, so it stays; one of plain words ("(see above)", "— or so
    /// I hope") is commentary the summary can lose.
    func shorten(_ text: String) -> String {
        var result = text
        if configuration.dropsParentheses {
            var searchStart = result.startIndex
            while let open = result[searchStart...].firstIndex(of: "("), let close = result[open...].firstIndex(of: ")") {
                let aside = result[result.index(after: open)..<close]
                if Self.carriesFact(aside) {
                    searchStart = result.index(after: close)
                    continue
                }
                var start = open
                while start > result.startIndex, result[result.index(before: start)] == " " { start = result.index(before: start) }
                let offset = result.distance(from: result.startIndex, to: start)
                result.removeSubrange(start...close)
                searchStart = result.index(result.startIndex, offsetBy: offset)
            }
        }
        if configuration.dropsDashAsides {
            for dash in [" — ", " – ", " - "] {
                if let range = result.range(of: dash), range.lowerBound > result.startIndex, !Self.carriesFact(result[range.upperBound...]) {
                    result = String(result[..<range.lowerBound])
                }
            }
        }
        return result.trimmingCharacters(in: .whitespaces)
    }

    /// Whether an aside states a fact in a few words: at most `factAsideWords` words holding a digit,
    /// or a capitalized word that is not a common opener (a name, a place, a weekday or month). A
    /// longer aside is a second thought, summarized (or not) on its own merits.
    static func carriesFact(_ aside: Substring) -> Bool {
        guard aside.split(separator: " ").count <= factAsideWords else { return false }
        if aside.contains(where: \.isNumber) { return true }
        for word in aside.split(whereSeparator: { !$0.isLetter && $0 != "'" }) {
            guard let first = word.first, first.isUppercase, word.count > 1 else { continue }
            if !Self.commonCapitalized.contains(word.lowercased()) { return true }
        }
        return false
    }

    static let factAsideWords = 6

    /// Capitalized words that open an aside without naming anything.
    static let commonCapitalized: Set<String> = [
        "a", "an", "the", "and", "or", "but", "if", "so", "see", "also", "maybe", "probably", "perhaps", "not",
        "this", "that", "these", "those", "it", "its", "we", "they", "he", "she", "you", "my", "our", "their",
        "optional", "note", "eg", "ie", "etc", "tbd", "todo", "ok",
    ]

    /// The text of a list line ("- item", "* item", "3. item", "- [x] task"), or nil.
    static func listItemText(_ line: String) -> String? {
        var rest = Substring(line)
        if let first = rest.first, "-*+".contains(first), rest.dropFirst().first == " " {
            rest = rest.dropFirst(2)
        } else {
            let digits = rest.prefix { $0.isNumber }
            let after = rest.dropFirst(digits.count)
            guard !digits.isEmpty, let mark = after.first, ".)".contains(mark), after.dropFirst().first == " " else { return nil }
            rest = after.dropFirst(2)
        }
        rest = rest.drop { $0 == " " }
        for box in ["[ ] ", "[x] ", "[X] "] where rest.hasPrefix(box) { rest = rest.dropFirst(box.count) }
        return String(rest)
    }

    static func isTableRule(_ line: String) -> Bool {
        line.contains("-") && line.allSatisfy { "|-: ".contains($0) }
    }

    /// `text` without Markdown emphasis, code marks and link targets.
    static func plain(_ text: String) -> String {
        var result = text
        for mark in ["**", "__", "~~", "`"] { result = result.replacingOccurrences(of: mark, with: "") }
        result = result.replacingOccurrences(of: "*", with: "")
        // [label](target) → label
        while let open = result.range(of: "]("), let close = result[open.upperBound...].firstIndex(of: ")"),
              let start = result[..<open.lowerBound].lastIndex(of: "[") {
            let label = result[result.index(after: start)..<open.lowerBound]
            result.replaceSubrange(start...close, with: label)
        }
        return result.trimmingCharacters(in: .whitespaces)
    }

    /// Titles that end with a period but do not end a sentence.
    static let abbreviations: Set<String> = ["dr", "mr", "mrs", "ms", "prof", "st", "e.g", "i.e", "vs", "etc", "no", "approx", "fig"]

    /// Sentences of one line: a break after . ! ? followed by a space and a capital, digit, quote
    /// or parenthesis, except after a known abbreviation.
    static func sentences(_ line: String) -> [String] {
        var result: [String] = []
        var current = ""
        let characters = Array(line)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            current.append(character)
            if ".!?".contains(character), index + 2 < characters.count, characters[index + 1] == " " {
                let next = characters[index + 2]
                let lastWord = current.dropLast().split(separator: " ").last.map { $0.lowercased() } ?? ""
                if next.isUppercase || next.isNumber || "\"“(".contains(next), !(character == "." && abbreviations.contains(lastWord)) {
                    result.append(current.trimmingCharacters(in: .whitespaces))
                    current = ""
                }
            }
            index += 1
        }
        let last = current.trimmingCharacters(in: .whitespaces)
        if !last.isEmpty { result.append(last) }
        return result
    }
}

import EmberCore

/// Precision, recall and their harmonic mean (F1) for one candidate against one reference.
public struct ROUGEScore: Sendable, Equatable {
    public var precision: Double
    public var recall: Double
    public var f1: Double

    /// `matches` out of `candidateCount` candidate units and `referenceCount` reference units;
    /// every value is 0 when either side is empty or nothing matches.
    public init(matches: Int, candidateCount: Int, referenceCount: Int) {
        precision = candidateCount > 0 ? Double(matches) / Double(candidateCount) : 0
        recall = referenceCount > 0 ? Double(matches) / Double(referenceCount) : 0
        f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
    }
}

/// ROUGE-1, ROUGE-2 and ROUGE-L of one candidate summary against one reference.
public struct ROUGEScores: Sendable, Equatable {
    public var rouge1: ROUGEScore
    public var rouge2: ROUGEScore
    public var rougeL: ROUGEScore
}

/// ROUGE (Lin, 2004) for comparing a generated summary with a reference written by a person.
///
/// - ROUGE-N: n-grams of the candidate that also occur in the reference, each counted at most as
///   often as the reference has it ("clipped"); precision over the candidate's n-grams, recall over
///   the reference's.
/// - ROUGE-L: the longest common subsequence of tokens; precision is its length over the
///   candidate's token count, recall over the reference's.
///
/// Both texts are lowercased and split into tokens by ``tokens(_:)``; there is no stemming and no
/// stop-word removal. F1 is the plain harmonic mean (β = 1). ROUGE-L is computed over the whole
/// text as one sequence (not the sentence-split "ROUGE-Lsum").
public enum ROUGE: Sendable {
    /// Lowercased runs of letters and digits; everything else separates tokens. Accented letters are
    /// letters, so "Café" is the token "café".
    public static func tokens(_ text: String) -> [String] { WordTokens.of(text) }

    /// All three scores for `candidate` against `reference`.
    public static func scores(candidate: String, reference: String) -> ROUGEScores {
        let candidateTokens = tokens(candidate), referenceTokens = tokens(reference)
        return ROUGEScores(rouge1: rougeN(1, candidate: candidateTokens, reference: referenceTokens),
                           rouge2: rougeN(2, candidate: candidateTokens, reference: referenceTokens),
                           rougeL: rougeL(candidate: candidateTokens, reference: referenceTokens))
    }

    /// ROUGE-N over token lists.
    public static func rougeN(_ order: Int, candidate: [String], reference: [String]) -> ROUGEScore {
        precondition(order >= 1, "ROUGE-N needs n ≥ 1")
        let candidateGrams = nGramCounts(candidate, order), referenceGrams = nGramCounts(reference, order)
        var matches = 0
        for (gram, count) in candidateGrams {
            matches += min(count, referenceGrams[gram] ?? 0)
        }
        return ROUGEScore(matches: matches, candidateCount: max(0, candidate.count - order + 1),
                          referenceCount: max(0, reference.count - order + 1))
    }

    /// ROUGE-L over token lists.
    public static func rougeL(candidate: [String], reference: [String]) -> ROUGEScore {
        ROUGEScore(matches: longestCommonSubsequence(candidate, reference), candidateCount: candidate.count,
                   referenceCount: reference.count)
    }

    /// The length of the longest common subsequence, by dynamic programming in two rows.
    public static func longestCommonSubsequence(_ first: [String], _ second: [String]) -> Int {
        guard !first.isEmpty, !second.isEmpty else { return 0 }
        var previous = [Int](repeating: 0, count: second.count + 1)
        var current = previous
        for token in first {
            for (index, other) in second.enumerated() {
                current[index + 1] = token == other ? previous[index] + 1 : max(previous[index + 1], current[index])
            }
            swap(&previous, &current)
        }
        return previous[second.count]
    }

    private static func nGramCounts(_ tokens: [String], _ order: Int) -> [[String]: Int] {
        guard tokens.count >= order else { return [:] }
        var counts: [[String]: Int] = [:]
        for start in 0...(tokens.count - order) {
            counts[Array(tokens[start..<(start + order)]), default: 0] += 1
        }
        return counts
    }
}

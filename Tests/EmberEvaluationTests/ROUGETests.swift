import EmberEvaluation
import Testing

/// ROUGE against scores worked out by hand (each case's comment shows the counting). On the ASCII
/// cases the values also agree with Google's `rouge-score` package (`use_stemmer=False`), checked by
/// hand once; that package folds accented letters away, so it is no reference for the others.
struct ROUGETests {
    struct Case: Sendable, CustomTestStringConvertible {
        var candidate: String
        var reference: String
        var rouge1: (p: Double, r: Double, f: Double)
        var rouge2: (p: Double, r: Double, f: Double)
        var rougeL: (p: Double, r: Double, f: Double)
        var testDescription: String { "\(candidate) | \(reference)" }
    }

    static let cases: [Case] = [
        // Unigrams: the×2, cat, on, mat match (5 of 6 each side). Bigrams: "the cat", "on the",
        // "the mat" (3 of 5). LCS: "the cat on the mat" (5).
        Case(candidate: "the cat lay on the mat", reference: "the cat sat on the mat",
             rouge1: (5 / 6, 5 / 6, 5 / 6), rouge2: (3 / 5, 3 / 5, 3 / 5), rougeL: (5 / 6, 5 / 6, 5 / 6)),
        // Lin's example: every word matches, one bigram ("the gunman") of 3, LCS "the gunman" (2 of 4).
        Case(candidate: "The gunman killed police.", reference: "Police killed the gunman.",
             rouge1: (1, 1, 1), rouge2: (1 / 3, 1 / 3, 1 / 3), rougeL: (0.5, 0.5, 0.5)),
        // Clipping: "the" counts once because the reference has it once. P = 1/4, R = 1/2,
        // F = 2·(1/8)/(3/4) = 1/3. No bigram matches.
        Case(candidate: "the the the the", reference: "the cat",
             rouge1: (0.25, 0.5, 1 / 3), rouge2: (0, 0, 0), rougeL: (0.25, 0.5, 1 / 3)),
        // a, c, e match: P = 3/5, R = 3/6, F = 2·0.3/1.1 = 6/11. LCS "a c e" is the same 3.
        Case(candidate: "a b c d e", reference: "a x c y e z",
             rouge1: (0.6, 0.5, 6 / 11), rouge2: (0, 0, 0), rougeL: (0.6, 0.5, 6 / 11)),
        // Accents stay letters; case and punctuation do not matter. Candidate: buy, café, crème, for, 3;
        // reference: buy, crème, café, 3. Unigrams 4/5 and 4/4, F = 8/9. Bigrams: none of
        // (buy café)(café crème)(crème for)(for 3) is in (buy crème)(crème café)(café 3).
        // LCS: "buy café 3" or "buy crème 3" (3): P = 3/5, R = 3/4, F = 2·0.45/1.35 = 2/3.
        Case(candidate: "Buy CAFÉ, crème for 3!", reference: "buy crème café 3",
             rouge1: (0.8, 1, 8 / 9), rouge2: (0, 0, 0), rougeL: (0.6, 0.75, 2 / 3)),
        // Nothing to compare: every score is 0.
        Case(candidate: "", reference: "anything at all",
             rouge1: (0, 0, 0), rouge2: (0, 0, 0), rougeL: (0, 0, 0)),
    ]

    @Test("ROUGE-1, ROUGE-2 and ROUGE-L match the hand-computed values", arguments: cases)
    func handComputed(_ example: Case) {
        let scores = ROUGE.scores(candidate: example.candidate, reference: example.reference)
        for (name, score, expected) in [("ROUGE-1", scores.rouge1, example.rouge1), ("ROUGE-2", scores.rouge2, example.rouge2),
                                        ("ROUGE-L", scores.rougeL, example.rougeL)] {
            #expect(abs(score.precision - expected.p) < 1e-12, "\(name) precision")
            #expect(abs(score.recall - expected.r) < 1e-12, "\(name) recall")
            #expect(abs(score.f1 - expected.f) < 1e-12, "\(name) F1")
        }
    }

    @Test("tokens: lowercase runs of letters and digits")
    func tokens() {
        #expect(ROUGE.tokens("Café, résumé! It's 10:30.") == ["café", "résumé", "it", "s", "10", "30"])
        #expect(ROUGE.tokens("  \n") == [])
    }

    @Test("a text against itself scores 1 everywhere")
    func identity() {
        let text = "Pack the tent, the stove and two litres of water before Saturday."
        let scores = ROUGE.scores(candidate: text, reference: text)
        #expect(scores.rouge1.f1 == 1 && scores.rouge2.f1 == 1 && scores.rougeL.f1 == 1)
    }

    @Test("longest common subsequence of token lists")
    func longestCommonSubsequence() {
        #expect(ROUGE.longestCommonSubsequence(["a", "b", "c", "b", "d", "a", "b"], ["b", "d", "c", "a", "b", "a"]) == 4)
        #expect(ROUGE.longestCommonSubsequence([], ["a"]) == 0)
    }
}

import EmberCore

/// The word-level vocabulary the summary pipeline shares: content words (no function words),
/// a light suffix stemmer, and the numbers and names a summary must not invent.
enum SummaryText {
    /// English function words: they carry no content of their own, so neither salience nor
    /// faithfulness counts them.
    static let stopWords: Set<String> = Set("""
        a an the and or but if then so of to in on at by for with from as is are was were be been being it its \
        it's this that these those i me my we our you your he she they them their his her him us not no do does \
        did done have has had will would can could should may might must shall just also very too than about \
        into over after before up down out off again only own same such both each few more most other some any \
        all what which who whom whose when where why how there here one two s t don isn also per via
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))

    /// Number words a summary may use for the digits a note wrote (and back).
    static let numberWords: [String: String] = [
        "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
        "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "twenty": "20", "thirty": "30", "fifty": "50",
        "hundred": "100", "first": "1st", "second": "2nd", "third": "3rd", "half": "50",
    ]

    /// `word` without a plural, past or progressive ending ("batteries" → "batteri", "softened" →
    /// "soften"), so different forms of one word meet.
    static func stem(_ word: String) -> String {
        for suffix in ["ing", "ed", "es", "s"] where word.count > 4 && word.hasSuffix(suffix) {
            return String(word.dropLast(suffix.count))
        }
        return word
    }

    static func isNumber(_ word: String) -> Bool { word.contains { $0.isNumber } }

    /// The stems of `text`'s content words and numbers, in order.
    static func contentStems(_ text: String) -> [String] {
        WordTokens.of(text).compactMap { word in
            isNumber(word) ? word : (stopWords.contains(word) ? nil : stem(word))
        }
    }
}

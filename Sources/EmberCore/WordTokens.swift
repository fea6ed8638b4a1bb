/// Words as text measures count them: lowercased runs of letters and digits, everything else
/// separating them ("Café résumé, 2 pages" → café, résumé, 2, pages). ROUGE, the summary checks
/// and the decoding guards all split text this one way.
public enum WordTokens: Sendable {
    public static func of(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        for character in text.lowercased() {
            if character.isLetter || character.isNumber {
                current.append(character)
            } else if !current.isEmpty {
                tokens.append(current)
                current = ""
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }
}

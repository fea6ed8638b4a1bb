import EmberCore

extension JSONValue {
    /// Parses `text` (RFC 8259; white space around tokens; nothing after the value) with the one
    /// JSON parser (`JSONValue.parse(bytes:options:)`); an error says what and at which byte.
    public static func parse(_ text: String) throws(LanguageModelError) -> JSONValue {
        do throws(JSONParseError) {
            return try parse(bytes: Array(text.utf8)).value
        } catch {
            throw LanguageModelError(.invalidInput, error.description)
        }
    }
}

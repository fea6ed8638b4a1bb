import EmberCore
import Foundation

/// Keeps an extraction to what its note supports. A small model fills a list with items the
/// note never mentions, or repeats one item until the list is full; an extraction copies from
/// the note, so a value it invented is an error, not a guess to keep.
///
/// Checked against the note: free strings (no `enum`, `const`, `pattern` or `format`: names,
/// places, items, tasks) must share most of their words with it, and numbers must be written in
/// it. A date needs its day of the month in the note and a time its hour. A nullable string with
/// a pattern (an email, a phone number: null when the note gives none) must be written in the
/// note, up to case and punctuation; one that may not be null (a currency code) is left alone, as
/// the note may write it differently ("€"). An unsupported value becomes null where the schema
/// allows null, its member is left out where it is optional, and otherwise its array item is
/// dropped. Repeated items are dropped. A list never falls below its `minItems` (then it is kept
/// as it was), and the result is still a document of the schema.
public struct ExtractionGrounding: Sendable {
    /// The share of a string's words the note must hold.
    public var minimumSupport: Double

    public init(minimumSupport: Double = 0.5) {
        self.minimumSupport = minimumSupport
    }

    /// `document` with what `note` does not support removed (see the type's comment).
    public func ground(_ document: JSONValue, schema: JSONValue, note: String) -> JSONValue {
        let source = Source(note)
        return ground(document, schema: schema, source: source) ?? document
    }

    /// The note's words and numbers, looked up by every value.
    struct Source {
        let words: Set<String>
        let numbers: [Double]

        /// The text's letters and digits alone, lowercased (`+44 20 7946` → `44207946`).
        let characters: String

        init(_ text: String) {
            characters = ExtractionGrounding.lettersAndDigits(text)
            words = Set(ExtractionGrounding.words(of: text))
            numbers = ExtractionGrounding.numbers(in: text)
        }
    }

    /// A value grounded, or nil when it is unsupported and not nullable (its item should go).
    func ground(_ value: JSONValue, schema: JSONValue, source: Source) -> JSONValue? {
        let nullable = Self.allowsNull(schema)
        switch value {
        case .string(let text):
            if Self.isFreeString(schema) {
                guard !supports(text, source) else { return value }
            } else if let format = Self.dateOrTimeFormat(schema) {
                guard !Self.supportsDateOrTime(text, format: format, source) else { return value }
            } else if nullable, schema["pattern"] != nil {
                guard !Self.isWritten(text, in: source) else { return value }
            } else {
                return value
            }
            return nullable ? .null : nil
        case .number(let number, _):
            guard schema["enum"] == nil, schema["const"] == nil,
                  !source.numbers.contains(where: { abs($0 - number) <= 1e-9 * max(1, abs(number)) }) else { return value }
            return nullable ? .null : nil
        case .object(let members):
            guard case .object(let properties)? = schema["properties"] else { return value }
            var required: Set<String> = []
            if case .array(let names)? = schema["required"] {
                for case .string(let name) in names { required.insert(name) }
            }
            var kept: [(String, JSONValue)] = []
            for (key, member) in members {
                guard let propertySchema = properties.last(where: { $0.0 == key })?.1 else {
                    kept.append((key, member))
                    continue
                }
                if let grounded = ground(member, schema: propertySchema, source: source) {
                    kept.append((key, grounded))
                } else if required.contains(key) {
                    return nullable ? .null : nil
                }
            }
            return .object(kept)
        case .array(let items):
            guard let itemSchema = schema["items"] else { return value }
            var kept: [JSONValue] = []
            var seen: Set<String> = []
            for item in items {
                guard let grounded = ground(item, schema: itemSchema, source: source) else { continue }
                if seen.insert(Self.identity(of: grounded)).inserted { kept.append(grounded) }
            }
            var minimum = 0
            if case .number(let count, _)? = schema["minItems"] { minimum = Int(count) }
            return kept.count >= minimum ? .array(kept) : value
        case .null, .bool:
            return value
        }
    }

    /// Whether the note holds at least `minimumSupport` of the string's content words (not function
    /// words, not single letters); a string without any must be written in the note as it is. An
    /// empty string is not supported.
    func supports(_ text: String, _ source: Source) -> Bool {
        let all = Self.words(of: text)
        // Single letters say nothing either (`M.O.A.S.A.S` is no name the note wrote).
        let content = all.filter { !Self.functionWords.contains($0) && ($0.count > 1 || $0.first?.isNumber == true) }
        guard !content.isEmpty else { return Self.isWritten(text, in: source) && source.words.isSuperset(of: all) }
        let words = content
        let found = words.filter { word in Self.contains(source.words, word) }.count
        return Double(found) >= minimumSupport * Double(words.count)
    }

    /// A word is in the note as written, or as a form sharing its stem (`ping`/`pings`, `order`/`ordered`).
    static func contains(_ words: Set<String>, _ word: String) -> Bool {
        if words.contains(word) { return true }
        guard word.count >= 4 else { return false }
        let stem = String(word.prefix(max(4, word.count - 2)))
        return words.contains { $0.count >= 4 && ($0.hasPrefix(stem) || word.hasPrefix(String($0.prefix(max(4, $0.count - 2))))) }
    }

    /// Lowercased words without diacritics (`Tomás` → `tomas`), split at anything not a letter or digit.
    static func words(of text: String) -> [String] {
        text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            .split(whereSeparator: { !$0.isLetter && !$0.isNumber })
            .map(String.init)
    }

    /// Every number written in the text, each read as written (`1,200` and `12,50` both ways:
    /// thousands separator or decimal comma).
    static func numbers(in text: String) -> [Double] {
        var result: [Double] = []
        var current = ""
        func flush() {
            let trimmed = current.trimmingCharacters(in: CharacterSet(charactersIn: ".,"))
            current = ""
            guard !trimmed.isEmpty else { return }
            for candidate in [trimmed.replacingOccurrences(of: ",", with: ""),
                              trimmed.replacingOccurrences(of: ".", with: "").replacingOccurrences(of: ",", with: "."),
                              trimmed.replacingOccurrences(of: ",", with: ".")] {
                if let value = Double(candidate) { result.append(value) }
            }
            for part in trimmed.split(whereSeparator: { $0 == "." || $0 == "," }) {
                if let value = Double(part) { result.append(value) }
            }
        }
        for character in text {
            if character.isASCII, character.isNumber || ((character == "." || character == ",") && !current.isEmpty) {
                current.append(character)
            } else {
                flush()
            }
        }
        flush()
        return result
    }

    /// Words that say nothing about what an item is.
    static let functionWords: Set<String> = [
        "a", "an", "the", "to", "of", "and", "or", "in", "on", "at", "for", "with", "by", "from", "about", "into",
        "is", "are", "be", "it", "its", "this", "that", "these", "those", "my", "me", "i", "we", "our", "you", "your",
        "up", "out", "as", "so", "do", "get",
    ]

    /// `date`, `date-time` or `time` when the schema's string has that format.
    static func dateOrTimeFormat(_ schema: JSONValue) -> String? {
        guard case .string(let format)? = schema["format"], ["date", "date-time", "time"].contains(format) else { return nil }
        return format
    }

    /// A date needs its day of the month written in the note, a time its hour (as written, or on a
    /// 12-hour clock): the rest of a date (month, year) is often implied, but a day the note never
    /// names was made up.
    static func supportsDateOrTime(_ text: String, format: String, _ source: Source) -> Bool {
        let parts = text.split(whereSeparator: { !$0.isNumber }).compactMap { Double($0) }
        let number: Double?
        switch format {
        case "time": number = parts.first
        default: number = parts.count >= 3 ? parts[2] : nil
        }
        guard let number else { return true }
        let written = source.numbers.contains(number)
        if format == "time", number > 12 { return written || source.numbers.contains(number - 12) }
        return written
    }

    /// Whether the note writes `text`, up to case, spacing and punctuation (a phone number
    /// written with other separators, an email in capitals).
    static func isWritten(_ text: String, in source: Source) -> Bool {
        let wanted = lettersAndDigits(text)
        return !wanted.isEmpty && source.characters.contains(wanted)
    }

    static func lettersAndDigits(_ text: String) -> String {
        String(String.UnicodeScalarView(text.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            .unicodeScalars.filter { CharacterSet.alphanumerics.contains($0) }))
    }

    /// A string with no `enum`, `const`, `pattern` or `format`: text the note should contain.
    static func isFreeString(_ schema: JSONValue) -> Bool {
        schema["enum"] == nil && schema["const"] == nil && schema["pattern"] == nil && schema["format"] == nil
    }

    static func allowsNull(_ schema: JSONValue) -> Bool {
        switch schema["type"] {
        case .string("null")?: return true
        case .array(let types)?: return types.contains(.string("null"))
        default:
            if case .array(let values)? = schema["enum"] { return values.contains(.null) }
            return false
        }
    }

    /// What two items must share to be the same: their text as words, their other values as written.
    static func identity(of value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number, _): return "\(number)"
        case .string(let text): return words(of: text).joined(separator: " ")
        case .array(let items): return "[" + items.map(identity).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { $0.0 + ":" + identity(of: $0.1) }.joined(separator: ",") + "}"
        }
    }
}

extension JSONValue {
    /// The value as compact JSON (no white space), an object's members in their order.
    public var compactText: String {
        switch self {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(_, let text): return text
        case .string(let text): return Self.quoted(text)
        case .array(let items): return "[" + items.map(\.compactText).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { Self.quoted($0.0) + ":" + $0.1.compactText }.joined(separator: ",") + "}"
        }
    }

    private static func quoted(_ text: String) -> String { JSONString.quote(text) }
}

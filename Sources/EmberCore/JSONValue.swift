/// A JSON value that keeps an object's keys in the order written (a schema's property order is
/// the order its documents are generated in) and a number's text.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double, text: String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (left: JSONValue, right: JSONValue) -> Bool {
        switch (left, right) {
        case (.null, .null): return true
        case (.bool(let a), .bool(let b)): return a == b
        case (.number(let a, _), .number(let b, _)): return a == b
        case (.string(let a), .string(let b)): return a == b
        case (.array(let a), .array(let b)): return a == b
        case (.object(let a), .object(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The member `key` of an object (nil otherwise).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }
}

/// Why a JSON text was refused: what, at which byte, on which line, in which field. Its
/// description is one line for people ("an unclosed string at byte 12"); readers with their own
/// wording (`EmberDevice.JSONFile`) map `kind` to it.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case tooDeep(Int)
        case unexpectedEnd
        /// A byte no value starts with.
        case unexpectedCharacter(UInt8)
        /// `NaN` or `Infinity`, which JSON does not have.
        case nonFiniteNumber
        /// `-Infinity`.
        case negativeInfinity
        case expectedLiteral(String)
        case expectedKey
        /// A key written twice in one object (only with `ParseOptions.refusesDuplicateKeys`).
        case duplicateKey(String)
        case expectedColon
        case unclosedObject
        case unclosedArray
        case expectedCommaOrBrace
        case expectedCommaOrBracket
        /// A minus sign without digits.
        case numberWithoutDigits
        case leadingZero
        case fractionWithoutDigits
        case exponentWithoutDigits
        /// A number no `Double` holds (its text).
        case numberOverflow(String)
        case unclosedString
        case controlCharacter
        case invalidEscape
        case invalidUnicodeEscape
        /// A high surrogate escape not followed by a `\u` escape.
        case highSurrogateAlone
        case unpairedSurrogate
        case invalidUTF8
        case textAfterValue
    }

    public var kind: Kind
    /// The byte (from 0) where the reader stood.
    public var offset: Int
    /// The line of `offset` (from 1).
    public var line: Int
    /// The field being read, as a dotted path with `[index]` for array items ("" at the top).
    public var path: String

    public init(_ kind: Kind, offset: Int, line: Int, path: String) {
        self.kind = kind
        self.offset = offset
        self.line = line
        self.path = path
    }

    public var description: String { "\(reason) at byte \(offset + 1)" }

    /// What is wrong, without where.
    public var reason: String {
        switch kind {
        case .tooDeep(let depth): "nesting deeper than \(depth)"
        case .unexpectedEnd: "unexpected end"
        case .unexpectedCharacter, .nonFiniteNumber, .negativeInfinity, .numberWithoutDigits: "unexpected character"
        case .expectedLiteral(let literal): "expected '\(literal)'"
        case .expectedKey: "expected a key"
        case .duplicateKey(let key): "the key '\(key)' written twice"
        case .expectedColon: "expected ':'"
        case .unclosedObject: "an unclosed '{'"
        case .unclosedArray: "an unclosed '['"
        case .expectedCommaOrBrace, .expectedCommaOrBracket: "expected ','"
        case .leadingZero: "a number with a leading zero"
        case .fractionWithoutDigits: "a number without digits after '.'"
        case .exponentWithoutDigits: "a number without exponent digits"
        case .numberOverflow: "an invalid number"
        case .unclosedString: "an unclosed string"
        case .controlCharacter: "a control character in a string"
        case .invalidEscape: "an invalid escape"
        case .invalidUnicodeEscape: "an invalid \\u escape"
        case .highSurrogateAlone: "expected '\\u'"
        case .unpairedSurrogate: "a lone surrogate"
        case .invalidUTF8: "invalid UTF-8 in a string"
        case .textAfterValue: "text after the value"
        }
    }
}

extension JSONValue {
    /// What a parse refuses beyond RFC 8259, and how far it goes. The defaults read model output
    /// and schemas; `EmberDevice.JSONFile` asks for more.
    public struct ParseOptions: Sendable, Equatable {
        /// Deeper nesting is refused rather than recursed into.
        public var maximumDepth = 64
        /// Skip a UTF-8 byte order mark before the document.
        public var allowsByteOrderMark = false
        /// Refuse a key written twice in one object (readers disagree on which one counts).
        public var refusesDuplicateKeys = false
        /// Refuse a number too large for a `Double` (else it reads as ±infinity, its text kept).
        public var refusesOverflow = false
        /// Refuse invalid UTF-8 in a string (else each bad sequence reads as U+FFFD).
        public var refusesInvalidUTF8 = true
        /// Record where every number stands (`ParseResult.numbers`).
        public var recordsNumbers = false

        public init() {}
    }

    /// Where a number stands: its bytes, its field and its text.
    public struct NumberSite: Sendable, Equatable {
        public var range: Range<Int>
        public var path: String
        public var text: String
    }

    /// A parsed document, with its numbers' places when asked for.
    public struct ParseResult: Sendable {
        public var value: JSONValue
        public var numbers: [NumberSite]
    }

    /// Parses `bytes` as one JSON document (RFC 8259; white space around tokens; nothing after
    /// the value), within `options`.
    public static func parse(bytes: [UInt8], options: ParseOptions = ParseOptions()) throws(JSONParseError) -> ParseResult {
        var parser = JSONParser(bytes: bytes, options: options)
        if options.allowsByteOrderMark, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { parser.position = 3 }
        parser.skipSpace()
        let value = try parser.value(depth: 0)
        parser.skipSpace()
        guard parser.position == bytes.count else { throw parser.error(.textAfterValue) }
        return ParseResult(value: value, numbers: parser.numbers)
    }
}

/// The one JSON reader: recursive descent over bytes, bounded in depth, naming the field it is in
/// when it fails.
private struct JSONParser {
    let bytes: [UInt8]
    let options: JSONValue.ParseOptions
    var position = 0
    var numbers: [JSONValue.NumberSite] = []
    /// The keys and indices down to the value being read.
    var path: [PathComponent] = []

    enum PathComponent {
        case key(String)
        case index(Int)
    }

    init(bytes: [UInt8], options: JSONValue.ParseOptions) {
        self.bytes = bytes
        self.options = options
    }

    /// `path` as text: keys joined by dots, indices in brackets (`events[2].title`).
    func render(_ components: ArraySlice<PathComponent>) -> String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key): text += text.isEmpty ? key : "." + key
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }

    /// An error at the current position, in the field `path` names (minus `dropping` trailing components).
    func error(_ kind: JSONParseError.Kind, dropping: Int = 0) -> JSONParseError {
        let end = min(position, bytes.count)
        var line = 1
        for byte in bytes[..<end] where byte == UInt8(ascii: "\n") { line += 1 }
        return JSONParseError(kind, offset: position, line: line, path: render(path.dropLast(dropping)))
    }

    mutating func skipSpace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < options.maximumDepth else { throw error(.tooDeep(options.maximumDepth)) }
        guard position < bytes.count else { throw error(.unexpectedEnd) }
        switch bytes[position] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        case UInt8(ascii: "N"), UInt8(ascii: "I"): throw error(.nonFiniteNumber)
        default: throw error(.unexpectedCharacter(bytes[position]))
        }
    }

    mutating func object(depth: Int) throws(JSONParseError) -> JSONValue {
        position += 1
        var members: [(String, JSONValue)] = []
        var seen = Set<String>()
        skipSpace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
            position += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error(.expectedKey) }
            let key = try string()
            path.append(.key(key))
            if options.refusesDuplicateKeys, !seen.insert(key).inserted { throw error(.duplicateKey(key)) }
            skipSpace()
            guard position < bytes.count, bytes[position] == UInt8(ascii: ":") else { throw error(.expectedColon) }
            position += 1
            skipSpace()
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard position < bytes.count else { throw error(.unclosedObject, dropping: 1) }
            if bytes[position] == UInt8(ascii: "}") {
                position += 1
                path.removeLast()
                return .object(members)
            }
            guard bytes[position] == UInt8(ascii: ",") else { throw error(.expectedCommaOrBrace) }
            position += 1
            path.removeLast()
        }
    }

    mutating func array(depth: Int) throws(JSONParseError) -> JSONValue {
        position += 1
        var items: [JSONValue] = []
        skipSpace()
        if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
            position += 1
            return .array(items)
        }
        while true {
            skipSpace()
            path.append(.index(items.count))
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard position < bytes.count else { throw error(.unclosedArray, dropping: 1) }
            if bytes[position] == UInt8(ascii: "]") {
                position += 1
                path.removeLast()
                return .array(items)
            }
            guard bytes[position] == UInt8(ascii: ",") else { throw error(.expectedCommaOrBracket) }
            position += 1
            path.removeLast()
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let expected = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard bytes[position...].starts(with: expected) else { throw error(.expectedLiteral(word.description)) }
        position += expected.count
    }

    mutating func digits() -> Int {
        let first = position
        while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
        return position - first
    }

    /// A number per the JSON grammar, its text kept.
    mutating func number() throws(JSONParseError) -> JSONValue {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        if position < bytes.count, bytes[position] == UInt8(ascii: "I") { throw error(.negativeInfinity) }
        let integerStart = position
        let integerDigits = digits()
        guard integerDigits > 0 else { throw error(.numberWithoutDigits) }
        if integerDigits > 1, bytes[integerStart] == UInt8(ascii: "0") { throw error(.leadingZero) }
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard digits() > 0 else { throw error(.fractionWithoutDigits) }
        }
        if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
            position += 1
            if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard digits() > 0 else { throw error(.exponentWithoutDigits) }
        }
        let text = String(decoding: bytes[start..<position], as: UTF8.self)
        guard let value = Double(text), value.isFinite || !options.refusesOverflow else { throw error(.numberOverflow(text)) }
        if options.recordsNumbers { numbers.append(JSONValue.NumberSite(range: start..<position, path: render(path[...]), text: text)) }
        return .number(value, text: text)
    }

    /// A quoted string's text, escapes decoded; control characters and bad escapes are refused.
    mutating func string() throws(JSONParseError) -> String {
        position += 1
        var scalars = String.UnicodeScalarView()
        var start = position
        // The raw bytes since the last escape, checked when asked.
        func flush(_ end: Int) throws(JSONParseError) {
            guard start < end else { return }
            let raw = bytes[start..<end]
            if options.refusesInvalidUTF8 {
                guard let text = String(validating: raw, as: UTF8.self) else { throw error(.invalidUTF8) }
                scalars.append(contentsOf: text.unicodeScalars)
            } else {
                scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            }
        }
        while true {
            guard position < bytes.count else { throw error(.unclosedString) }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                try flush(position - 1)
                return String(scalars)
            }
            if byte < 0x20 { throw error(.controlCharacter) }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            position += 1
            try flush(position - 1)
            guard position < bytes.count else { throw error(.unclosedString) }
            let escape = bytes[position]
            position += 1
            switch escape {
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "/"): scalars.append("/")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = try hex4()
                if (0xD800..<0xDC00).contains(code) {
                    guard bytes[position...].starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "u")]) else { throw error(.highSurrogateAlone) }
                    position += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error(.unpairedSurrogate) }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw error(.unpairedSurrogate) }
                scalars.append(scalar)
            default:
                throw error(.invalidEscape)
            }
            start = position
        }
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard position + 4 <= bytes.count,
              let code = UInt32(String(decoding: bytes[position..<(position + 4)], as: UTF8.self), radix: 16) else {
            throw error(.invalidUnicodeEscape)
        }
        position += 4
        return code
    }
}

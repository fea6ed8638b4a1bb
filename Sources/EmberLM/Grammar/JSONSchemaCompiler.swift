import EmberCore
/// Compiles a JSON Schema (the subset below) into the byte pattern of its documents, with an
/// object's properties in the schema's order and, between tokens, at most `spacing`: nothing, one
/// space, or a line break and an indent (the layouts models were trained on; bounded, so a model
/// cannot spend its tokens on white space, and never before or after the document, so the
/// generation still ends with the closing brace).
///
/// Supported: `type` (`object`, `array`, `string`, `integer`, `number`, `boolean`, `null`, or a list
/// of them), `properties`, `required`, `additionalProperties: false`, `items`, `minItems`,
/// `maxItems`, `enum` and `const` (of strings, numbers, booleans, null), `pattern` (a whole match,
/// see `RegularExpressionParser`), `minLength`, `maxLength`, `format` (`date`, `time`,
/// `date-time`), `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum` (integers; numbers
/// take whole-number inclusive bounds), and the annotations `title`, `description`, `default`,
/// `examples`, `$schema`, `$id`, `$comment`. Anything else is refused before generation, naming
/// the feature and where it is.
enum JSONSchemaCompiler {
    /// Digits of an integer without bounds (stays within a 64-bit integer).
    static let maximumIntegerDigits = 18
    /// Digits after a number's decimal point.
    static let maximumFractionDigits = 12

    /// The longest indent after a line break between two tokens.
    static let maximumIndent = 16

    /// White space between two tokens: nothing, one space, or a line break and up to
    /// `maximumIndent` spaces or tabs. Built per use, not held in a global: an indirect enum in a
    /// global keeps its boxes through pointers with tag bits, which LeakSanitizer (the sanitized C
    /// client) reports as leaked.
    static var spacing: BytePattern {
        .optional(.choice([
            .text(" "),
            .sequence([.text("\n"), .repetition(.byte(ByteSet([UInt8(ascii: " "), UInt8(ascii: "\t")])), minimum: 0, maximum: maximumIndent)]),
        ]))
    }

    static func compile(_ text: String) throws(LanguageModelError) -> BytePattern {
        let schema: JSONValue
        do {
            schema = try JSONValue.parse(text)
        } catch {
            throw LanguageModelError(.invalidInput, "the JSON Schema is not valid JSON: \(error.message)")
        }
        return try compile(schema, at: "#")
    }

    private static let annotations: Set<String> = ["title", "description", "default", "examples", "$schema", "$id", "$comment"]
    private static let keywords: Set<String> = [
        "type", "properties", "required", "additionalProperties", "items", "minItems", "maxItems", "enum", "const",
        "pattern", "minLength", "maxLength", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    ]

    static func unsupported(_ feature: String, _ path: String) -> LanguageModelError {
        LanguageModelError(.invalidInput, "unsupported JSON Schema feature: \(feature) at \(path)")
    }

    static func invalid(_ what: String, _ path: String) -> LanguageModelError {
        LanguageModelError(.invalidInput, "invalid JSON Schema at \(path): \(what)")
    }

    static func compile(_ node: JSONValue, at path: String) throws(LanguageModelError) -> BytePattern {
        if case .bool(let flag) = node {
            throw unsupported(flag ? "the schema 'true' (any value)" : "the schema 'false' (no value)", path)
        }
        guard case .object(let members) = node else { throw invalid("a schema must be an object", path) }
        for (key, _) in members where !keywords.contains(key) && !annotations.contains(key) {
            throw unsupported("'\(key)'", path)
        }
        let schema = Schema(members)
        if let values = schema["enum"] {
            guard case .array(let list) = values, !list.isEmpty else { throw invalid("'enum' must be a non-empty list", path) }
            return .choice(try list.map { value throws(LanguageModelError) in .literal(try literal(value, at: path + "/enum")) })
        }
        if let value = schema["const"] {
            return .literal(try literal(value, at: path + "/const"))
        }
        guard let type = schema["type"] else { throw unsupported("a schema without 'type', 'enum' or 'const' (any value)", path) }
        if case .array(let types) = type {
            guard !types.isEmpty else { throw invalid("'type' must not be an empty list", path) }
            return .choice(try types.map { item throws(LanguageModelError) in
                guard case .string(let name) = item else { throw invalid("'type' must name types", path) }
                return try compile(schema, type: name, at: path)
            })
        }
        guard case .string(let name) = type else { throw invalid("'type' must be a string or a list of strings", path) }
        return try compile(schema, type: name, at: path)
    }

    private static func compile(_ schema: Schema, type: String, at path: String) throws(LanguageModelError) -> BytePattern {
        switch type {
        case "null": return .text("null")
        case "boolean": return .choice([.text("true"), .text("false")])
        case "string": return try string(schema, at: path)
        case "integer": return try integer(schema, at: path)
        case "number": return try number(schema, at: path)
        case "array": return try array(schema, at: path)
        case "object": return try object(schema, at: path)
        default: throw invalid("unknown type '\(type)'", path)
        }
    }

    // MARK: Values

    /// A count keyword (a whole number ≥ 0), nil when absent.
    private static func count(_ schema: Schema, _ key: String, at path: String) throws(LanguageModelError) -> Int? {
        guard let value = schema[key] else { return nil }
        guard case .number(let number, _) = value, number >= 0, number == number.rounded(), number <= 1_000_000 else {
            throw invalid("'\(key)' must be a whole number of at least 0", path)
        }
        return Int(number)
    }

    private static func bound(_ schema: Schema, _ key: String, at path: String) throws(LanguageModelError) -> Double? {
        guard let value = schema[key] else { return nil }
        guard case .number(let number, _) = value, number.isFinite else { throw invalid("'\(key)' must be a number", path) }
        return number
    }

    /// The compact JSON text of an `enum` or `const` value.
    private static func literal(_ value: JSONValue, at path: String) throws(LanguageModelError) -> [UInt8] {
        switch value {
        case .null: return Array("null".utf8)
        case .bool(let flag): return Array((flag ? "true" : "false").utf8)
        case .string(let string): return JSONText.quoted(string)
        case .number(_, let text): return Array(text.utf8)
        case .array, .object: throw unsupported("an object or array in 'enum'/'const'", path)
        }
    }

    private static func string(_ schema: Schema, at path: String) throws(LanguageModelError) -> BytePattern {
        let minimum = try count(schema, "minLength", at: path) ?? 0
        let maximum = try count(schema, "maxLength", at: path)
        if let maximum, maximum < minimum { throw invalid("'minLength' \(minimum) is greater than 'maxLength' \(maximum)", path) }
        var pattern: String?
        if let value = schema["pattern"] {
            guard case .string(let text) = value else { throw invalid("'pattern' must be a string", path) }
            pattern = text
        }
        if let value = schema["format"] {
            guard pattern == nil else { throw unsupported("'format' with 'pattern'", path) }
            guard case .string(let format) = value else { throw invalid("'format' must be a string", path) }
            switch format {
            case "date": pattern = #"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"#
            case "time": pattern = #"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?"#
            case "date-time": pattern = #"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?"#
            default: throw unsupported("'format: \(format)' (only date, time and date-time)", path)
            }
        }
        let quote = BytePattern.literal([UInt8(ascii: "\"")])
        if let pattern {
            guard schema["minLength"] == nil, schema["maxLength"] == nil else {
                throw unsupported("'pattern' or 'format' with 'minLength'/'maxLength' (bound the length in the pattern)", path)
            }
            do {
                return .sequence([quote, try RegularExpressionParser.parse(pattern, insideJSONString: true), quote])
            } catch {
                throw LanguageModelError(.invalidInput, "\(error.message) in 'pattern' at \(path)")
            }
        }
        if let maximum, maximum > 4096 { throw unsupported("'maxLength' over 4096", path) }
        return .sequence([quote, .repetition(character, minimum: minimum, maximum: maximum), quote])
    }

    /// One character of a JSON string: an unescaped scalar or an escape (no lone surrogates).
    static let character: BytePattern = {
        var plain = ScalarSet.all
        for value in UInt32(0)...0x1F { plain = plain.removing(value) }
        plain = plain.removing(0x22).removing(0x5C)
        let hex = BytePattern.byte(ByteSet(Array("0123456789abcdefABCDEF".utf8)))
        let notD = BytePattern.byte(ByteSet(Array("0123456789abcefABCEF".utf8)))
        let escapes = BytePattern.sequence([
            .literal([UInt8(ascii: "\\")]),
            .choice([
                .byte(ByteSet(Array("\"\\/bfnrt".utf8))),
                .sequence([.literal([UInt8(ascii: "u")]),
                           .choice([.sequence([notD, hex, hex, hex]),
                                    .sequence([.byte(ByteSet(Array("dD".utf8))), .byte(ByteSet(Array("01234567".utf8))), hex, hex])])]),
            ]),
        ])
        return .choice([RegularExpressionParser("").scalarSet(plain), escapes])
    }()

    private static func integer(_ schema: Schema, at path: String) throws(LanguageModelError) -> BytePattern {
        var low = try bound(schema, "minimum", at: path).map { $0.rounded(.up) }
        var high = try bound(schema, "maximum", at: path).map { $0.rounded(.down) }
        if let exclusive = try bound(schema, "exclusiveMinimum", at: path) {
            low = max(low ?? -.infinity, exclusive.rounded(.down) + 1)
        }
        if let exclusive = try bound(schema, "exclusiveMaximum", at: path) {
            high = min(high ?? .infinity, exclusive.rounded(.up) - 1)
        }
        let limit = 9e18
        if let value = low ?? high, abs(value) > limit { throw unsupported("an integer bound beyond ±9e18", path) }
        if let low, let high, abs(high) > limit || abs(low) > limit { throw unsupported("an integer bound beyond ±9e18", path) }
        if let low, let high, low > high { throw invalid("the minimum \(Int64(low)) is greater than the maximum \(Int64(high))", path) }
        return integerRange(low.map { Int64($0) }, high.map { Int64($0) })
    }

    /// Decimal integers from `low` to `high` (nil: no bound on that side), no leading zeros, no `-0`.
    static func integerRange(_ low: Int64?, _ high: Int64?) -> BytePattern {
        var alternatives: [BytePattern] = []
        if high.map({ $0 >= 0 }) ?? true {
            alternatives.append(decimalRange(UInt64(max(low ?? 0, 0)), high.map { UInt64($0) }))
        }
        if low.map({ $0 < 0 }) ?? true {
            let smallest = high.map { $0 < 0 ? UInt64(-$0) : 1 } ?? 1
            alternatives.append(.sequence([.text("-"), decimalRange(smallest, low.map { UInt64(-$0) })]))
        }
        return alternatives.count == 1 ? alternatives[0] : .choice(alternatives)
    }

    private static func number(_ schema: Schema, at path: String) throws(LanguageModelError) -> BytePattern {
        if schema["exclusiveMinimum"] != nil || schema["exclusiveMaximum"] != nil {
            throw unsupported("'exclusiveMinimum'/'exclusiveMaximum' on a number (use an integer, or inclusive bounds)", path)
        }
        let low = try bound(schema, "minimum", at: path), high = try bound(schema, "maximum", at: path)
        for value in [low, high].compactMap({ $0 }) where value != value.rounded() || abs(value) > 9e18 {
            throw unsupported("a number bound that is not a whole number within ±9e18 (\(value))", path)
        }
        if let low, let high, low > high { throw invalid("the minimum \(low) is greater than the maximum \(high)", path) }
        let digits = BytePattern.byte(ByteSet(UInt8(ascii: "0")...UInt8(ascii: "9")))
        let fraction = BytePattern.optional(.sequence([.text("."), .repetition(digits, minimum: 1, maximum: maximumFractionDigits)]))
        let zeroFraction = BytePattern.optional(.sequence([.text("."), .repetition(.text("0"), minimum: 1, maximum: maximumFractionDigits)]))
        /// Magnitudes from `smallest` to `largest` (nil: none) with their fractions.
        func magnitudes(_ smallest: UInt64, _ largest: UInt64?) -> BytePattern {
            guard let largest else { return .sequence([decimalRange(smallest, nil), fraction]) }
            let top = BytePattern.sequence([.text(String(largest)), zeroFraction])
            guard smallest < largest else { return top }
            return .choice([.sequence([decimalRange(smallest, largest - 1), fraction]), top])
        }
        var alternatives: [BytePattern] = []
        if high.map({ $0 >= 0 }) ?? true {
            alternatives.append(magnitudes(UInt64(max(low ?? 0, 0)), high.map { UInt64($0) }))
        }
        if low.map({ $0 < 0 }) ?? true {
            let smallest = high.map { $0 < 0 ? UInt64(-$0) : 0 } ?? 0
            alternatives.append(.sequence([.text("-"), magnitudes(smallest, low.map { UInt64(-$0) })]))
        }
        return alternatives.count == 1 ? alternatives[0] : .choice(alternatives)
    }

    /// Decimal numerals of the values from `low` to `high` (nil: up to `maximumIntegerDigits` digits).
    static func decimalRange(_ low: UInt64, _ high: UInt64?) -> BytePattern {
        let first = Array(String(low).utf8)
        guard let high else {
            var alternatives = [sameLength(first, Array(repeating: UInt8(ascii: "9"), count: first.count))]
            if first.count < maximumIntegerDigits {
                alternatives.append(.sequence([.byte(ByteSet(UInt8(ascii: "1")...UInt8(ascii: "9"))),
                                               .repetition(anyDigit, minimum: first.count, maximum: maximumIntegerDigits - 1)]))
            }
            return .choice(alternatives)
        }
        let last = Array(String(high).utf8)
        if first.count == last.count { return sameLength(first, last) }
        var alternatives = [sameLength(first, Array(repeating: UInt8(ascii: "9"), count: first.count))]
        for length in (first.count + 1)..<last.count where length >= 1 {
            alternatives.append(.sequence([.byte(ByteSet(UInt8(ascii: "1")...UInt8(ascii: "9"))),
                                           .repetition(anyDigit, minimum: length - 1, maximum: length - 1)]))
        }
        alternatives.append(sameLength([UInt8(ascii: "1")] + Array(repeating: UInt8(ascii: "0"), count: last.count - 1), last))
        return .choice(alternatives)
    }

    private static let anyDigit = BytePattern.byte(ByteSet(UInt8(ascii: "0")...UInt8(ascii: "9")))

    /// Digit strings of one length from `low` to `high` (as strings, `low` ≤ `high`).
    private static func sameLength(_ low: [UInt8], _ high: [UInt8]) -> BytePattern {
        guard let head = low.first, let top = high.first else { return .empty }
        if low.allSatisfy({ $0 == UInt8(ascii: "0") }), high.allSatisfy({ $0 == UInt8(ascii: "9") }) {
            return .repetition(anyDigit, minimum: low.count, maximum: low.count)
        }
        let restLow = Array(low.dropFirst()), restHigh = Array(high.dropFirst())
        if head == top { return .sequence([.literal([head]), sameLength(restLow, restHigh)]) }
        var alternatives: [BytePattern] = [
            .sequence([.literal([head]), sameLength(restLow, Array(repeating: UInt8(ascii: "9"), count: restLow.count))]),
        ]
        if head + 1 < top {
            alternatives.append(.sequence([.byte(ByteSet((head + 1)...(top - 1))),
                                           .repetition(anyDigit, minimum: restLow.count, maximum: restLow.count)]))
        }
        alternatives.append(.sequence([.literal([top]), sameLength(Array(repeating: UInt8(ascii: "0"), count: restHigh.count), restHigh)]))
        return .choice(alternatives)
    }

    private static func array(_ schema: Schema, at path: String) throws(LanguageModelError) -> BytePattern {
        guard let items = schema["items"] else { throw unsupported("an array without 'items'", path) }
        if case .array = items { throw unsupported("'items' as a list (tuple validation)", path + "/items") }
        let item = try compile(items, at: path + "/items")
        let minimum = try count(schema, "minItems", at: path) ?? 0
        let maximum = try count(schema, "maxItems", at: path)
        if let maximum, maximum < minimum { throw invalid("'minItems' \(minimum) is greater than 'maxItems' \(maximum)", path) }
        if max(minimum, maximum ?? 0) > 256 { throw unsupported("'minItems'/'maxItems' over 256", path) }
        let open = BytePattern.sequence([.text("["), spacing]), close = BytePattern.text("]")
        if maximum == 0 { return .sequence([open, close]) }
        let spaced = BytePattern.sequence([item, spacing])
        let more = BytePattern.repetition(.sequence([.text(","), spacing, spaced]), minimum: max(minimum - 1, 0), maximum: maximum.map { $0 - 1 })
        let list = BytePattern.sequence([spaced, more])
        return .sequence([open, minimum == 0 ? .optional(list) : list, close])
    }

    private static func object(_ schema: Schema, at path: String) throws(LanguageModelError) -> BytePattern {
        if let additional = schema["additionalProperties"], additional != .bool(false) {
            throw unsupported("'additionalProperties' other than false (only the listed properties are generated)", path)
        }
        var properties: [(String, JSONValue)] = []
        if let value = schema["properties"] {
            guard case .object(let members) = value else { throw invalid("'properties' must be an object", path) }
            properties = members
        }
        var required: [String] = []
        if let value = schema["required"] {
            guard case .array(let names) = value else { throw invalid("'required' must be a list of names", path) }
            for name in names {
                guard case .string(let text) = name else { throw invalid("'required' must be a list of names", path) }
                required.append(text)
            }
        }
        for name in required where !properties.contains(where: { $0.0 == name }) {
            throw invalid("'required' names '\(name)', which is not in 'properties'", path)
        }
        // Properties in the order the schema lists them.
        var members: [BytePattern.ObjectMember] = []
        for (name, value) in properties {
            members.append(.init(key: name, value: try compile(value, at: path + "/properties/" + name),
                                 isRequired: required.contains(name)))
        }
        return .object(members, spacing: spacing)
    }

    /// A schema object's keywords.
    struct Schema {
        let members: [(String, JSONValue)]
        init(_ members: [(String, JSONValue)]) { self.members = members }
        subscript(key: String) -> JSONValue? { members.last { $0.0 == key }?.1 }
    }
}


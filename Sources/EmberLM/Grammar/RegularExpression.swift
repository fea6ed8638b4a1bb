/// A parser of regular expressions into byte patterns: literals, `.`, classes `[a-z]` `[^…]`,
/// the escapes `\d \w \s \D \W \S \n \t \r \f \v \xHH \uHHHH \u{H…}`, groups `(…)` `(?:…)`
/// `(?<name>…)`, alternation `|`, and the quantifiers `* + ? {n} {n,} {n,m}`; `^` and `$` only at
/// the ends (a pattern always matches the whole output). Characters are Unicode scalars, matched
/// as their UTF-8 bytes. Refuses, naming it, anything else (backreferences, lookaround, lazy or
/// possessive quantifiers, inline flags, word boundaries).
struct RegularExpressionParser {
    private let scalars: [Unicode.Scalar]
    private var position = 0
    /// Inside a JSON string: characters JSON must escape are matched as their escapes.
    private let insideJSONString: Bool
    private let source: String

    /// The most repetitions a `{n,m}` may ask for.
    static let maximumRepetition = 1000

    init(_ pattern: String, insideJSONString: Bool = false) {
        scalars = Array(pattern.unicodeScalars)
        self.insideJSONString = insideJSONString
        source = pattern
    }

    static func parse(_ pattern: String, insideJSONString: Bool = false) throws(LanguageModelError) -> BytePattern {
        var parser = RegularExpressionParser(pattern, insideJSONString: insideJSONString)
        if parser.peek == "^" { parser.position += 1 }
        let result = try parser.alternation()
        if parser.position < parser.scalars.count {
            if parser.peek == ")" { throw parser.error("an unmatched ')'") }
            throw parser.error("unexpected '\(parser.scalars[parser.position])'")
        }
        return result
    }

    private var peek: Unicode.Scalar? { position < scalars.count ? scalars[position] : nil }

    private func error(_ what: String) -> LanguageModelError {
        LanguageModelError(.invalidInput, "invalid regular expression /\(source)/: \(what) at character \(position + 1)")
    }

    private func unsupported(_ feature: String) -> LanguageModelError {
        LanguageModelError(.invalidInput, "unsupported regular expression feature: \(feature) (at character \(position + 1) of /\(source)/)")
    }

    private mutating func alternation() throws(LanguageModelError) -> BytePattern {
        var alternatives = [try concatenation()]
        while peek == "|" {
            position += 1
            alternatives.append(try concatenation())
        }
        return alternatives.count == 1 ? alternatives[0] : .choice(alternatives)
    }

    private mutating func concatenation() throws(LanguageModelError) -> BytePattern {
        var parts: [BytePattern] = []
        while let scalar = peek, scalar != "|", scalar != ")" {
            if scalar == "$" {
                position += 1
                guard peek == nil || peek == ")" || peek == "|" else {
                    throw unsupported("'$' before the end of the pattern")
                }
                continue
            }
            if scalar == "^" {
                guard parts.isEmpty else { throw unsupported("'^' after the start of the pattern") }
                position += 1
                continue
            }
            var atom = try self.atom()
            while let quantifier = peek, "*+?{".unicodeScalars.contains(quantifier) {
                let (minimum, maximum) = try self.quantifier()
                if peek == "?" { throw unsupported("a lazy quantifier") }
                if peek == "+" { throw unsupported("a possessive quantifier") }
                atom = .repetition(atom, minimum: minimum, maximum: maximum)
            }
            parts.append(atom)
        }
        return parts.count == 1 ? parts[0] : .sequence(parts)
    }

    private mutating func quantifier() throws(LanguageModelError) -> (Int, Int?) {
        let scalar = scalars[position]
        position += 1
        switch scalar {
        case "*": return (0, nil)
        case "+": return (1, nil)
        case "?": return (0, 1)
        default:
            guard let minimum = try number() else { throw error("a '{' without a count") }
            var maximum: Int? = minimum
            if peek == "," {
                position += 1
                maximum = try number()
            }
            guard peek == "}" else { throw error("an unclosed '{'") }
            position += 1
            if let maximum, maximum < minimum { throw error("{\(minimum),\(maximum)} has its maximum below its minimum") }
            if max(minimum, maximum ?? 0) > Self.maximumRepetition {
                throw unsupported("a repetition count over \(Self.maximumRepetition)")
            }
            return (minimum, maximum)
        }
    }

    private mutating func number() throws(LanguageModelError) -> Int? {
        var digits = ""
        while let scalar = peek, ("0"..."9").contains(scalar) {
            digits.unicodeScalars.append(scalar)
            position += 1
            if digits.count > 6 { throw unsupported("a repetition count over \(Self.maximumRepetition)") }
        }
        return Int(digits)
    }

    private mutating func atom() throws(LanguageModelError) -> BytePattern {
        let scalar = scalars[position]
        position += 1
        switch scalar {
        case "(":
            if peek == "?" {
                position += 1
                switch peek {
                case ":":
                    position += 1
                case "<" where position + 1 < scalars.count && scalars[position + 1] != "=" && scalars[position + 1] != "!",
                     "P" where position + 1 < scalars.count && scalars[position + 1] == "<":
                    // A named group matches as a plain group.
                    while let next = peek, next != ">" { position += 1 }
                    guard peek == ">" else { throw error("an unclosed group name") }
                    position += 1
                case "=", "!", "<":
                    throw unsupported("lookaround")
                default:
                    throw unsupported("inline flags or a special group '(?'")
                }
            }
            let inner = try alternation()
            guard peek == ")" else { throw error("an unclosed '('") }
            position += 1
            return inner
        case "[":
            return scalarSet(try characterClass())
        case ".":
            return scalarSet(ScalarSet.all.removing(0x0A))
        case "\\":
            return try escape(inClass: false).pattern(self)
        case "*", "+", "?":
            throw error("a quantifier '\(scalar)' with nothing to repeat")
        case "{":
            throw error("a '{' with nothing to repeat")
        default:
            return scalarSet(ScalarSet(scalar.value...scalar.value))
        }
    }

    /// An escape: one scalar or a set of them.
    private enum Escaped {
        case scalar(UInt32)
        case set(ScalarSet)

        func pattern(_ parser: RegularExpressionParser) -> BytePattern {
            switch self {
            case .scalar(let value): return parser.scalarSet(ScalarSet(value...value))
            case .set(let set): return parser.scalarSet(set)
            }
        }
    }

    private mutating func escape(inClass: Bool) throws(LanguageModelError) -> Escaped {
        guard let scalar = peek else { throw error("a '\\' at the end") }
        position += 1
        switch scalar {
        case "d": return .set(ScalarSet.digits)
        case "D": return .set(ScalarSet.digits.complement)
        case "w": return .set(ScalarSet.word)
        case "W": return .set(ScalarSet.word.complement)
        case "s": return .set(ScalarSet.space)
        case "S": return .set(ScalarSet.space.complement)
        case "n": return .scalar(0x0A)
        case "t": return .scalar(0x09)
        case "r": return .scalar(0x0D)
        case "f": return .scalar(0x0C)
        case "v": return .scalar(0x0B)
        case "0": return .scalar(0)
        case "x": return .scalar(try hexadecimal(count: 2))
        case "u":
            if peek == "{" {
                position += 1
                var digits = ""
                while let next = peek, next != "}" {
                    digits.unicodeScalars.append(next)
                    position += 1
                }
                guard peek == "}", let value = UInt32(digits, radix: 16), Unicode.Scalar(value) != nil else {
                    throw error("an invalid \\u{…} escape")
                }
                position += 1
                return .scalar(value)
            }
            return .scalar(try hexadecimal(count: 4))
        case "b" where !inClass, "B": throw unsupported("a word boundary '\\\(scalar)'")
        case "b": return .scalar(0x08)
        case "1"..."9": throw unsupported("a backreference '\\\(scalar)'")
        case "p", "P": throw unsupported("a Unicode property '\\\(scalar)'")
        case "A", "z", "Z", "G": throw unsupported("an anchor '\\\(scalar)'")
        default:
            if ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) {
                throw unsupported("the escape '\\\(scalar)'")
            }
            return .scalar(scalar.value)
        }
    }

    private mutating func hexadecimal(count: Int) throws(LanguageModelError) -> UInt32 {
        guard position + count <= scalars.count else { throw error("a short hexadecimal escape") }
        var digits = ""
        for scalar in scalars[position..<(position + count)] { digits.unicodeScalars.append(scalar) }
        guard let value = UInt32(digits, radix: 16), Unicode.Scalar(value) != nil else {
            throw error("an invalid hexadecimal escape '\(digits)'")
        }
        position += count
        return value
    }

    /// After `[`: members up to `]`.
    private mutating func characterClass() throws(LanguageModelError) -> ScalarSet {
        var negated = false
        if peek == "^" {
            negated = true
            position += 1
        }
        var set = ScalarSet()
        var first = true
        while true {
            guard let scalar = peek else { throw error("an unclosed '['") }
            if scalar == "]", !first { position += 1; break }
            first = false
            if scalar == "[", position + 1 < scalars.count, scalars[position + 1] == ":" {
                throw unsupported("a POSIX class '[:…:]'")
            }
            position += 1
            var low: UInt32
            if scalar == "\\" {
                switch try escape(inClass: true) {
                case .set(let members):
                    set.formUnion(members)
                    continue
                case .scalar(let value):
                    low = value
                }
            } else {
                low = scalar.value
            }
            if peek == "-", position + 1 < scalars.count, scalars[position + 1] != "]" {
                position += 1
                var high = scalars[position].value
                position += 1
                if high == UInt32(UInt8(ascii: "\\")) {
                    guard case .scalar(let value) = try escape(inClass: true) else {
                        throw error("a class range ending in a class escape")
                    }
                    high = value
                }
                guard low <= high else { throw error("a class range out of order") }
                set.insert(low...high)
            } else {
                set.insert(low...low)
            }
        }
        return negated ? set.complement : set
    }

    /// One scalar of `set`, as UTF-8 byte sequences; inside a JSON string, `"`, `\` and control
    /// characters as their JSON escapes.
    func scalarSet(_ set: ScalarSet) -> BytePattern {
        var plain = set
        var alternatives: [BytePattern] = []
        if insideJSONString {
            for value in UInt32(0)...0x1F where set.contains(value) {
                plain = plain.removing(value)
                alternatives.append(.literal(Array(JSONText.quoted(String(Unicode.Scalar(value)!)).dropFirst().dropLast())))
            }
            for special in [UInt32(0x22), 0x5C] where set.contains(special) {
                plain = plain.removing(special)
                alternatives.append(.literal([UInt8(ascii: "\\"), UInt8(special)]))
            }
        }
        alternatives += UTF8Ranges.sequences(plain).map { ranges in
            ranges.count == 1 ? .byte(ByteSet(ranges[0])) : .sequence(ranges.map { .byte(ByteSet($0)) })
        }
        return alternatives.count == 1 ? alternatives[0] : .choice(alternatives)
    }
}

/// A set of Unicode scalar values as sorted, disjoint ranges.
struct ScalarSet: Sendable, Equatable {
    private(set) var ranges: [ClosedRange<UInt32>] = []

    init() {}

    init(_ range: ClosedRange<UInt32>) { ranges = [range] }

    static let maximum: UInt32 = 0x10FFFF
    static let all = ScalarSet(0...maximum)
    static let digits = ScalarSet(0x30...0x39)
    static var word: ScalarSet {
        var set = ScalarSet(0x30...0x39)
        set.insert(0x41...0x5A)
        set.insert(0x61...0x7A)
        set.insert(0x5F...0x5F)
        return set
    }
    static var space: ScalarSet {
        var set = ScalarSet(0x09...0x0D)
        set.insert(0x20...0x20)
        return set
    }

    mutating func insert(_ range: ClosedRange<UInt32>) {
        var merged = range
        var result: [ClosedRange<UInt32>] = []
        for existing in ranges {
            if existing.upperBound + 1 < merged.lowerBound || merged.upperBound + 1 < existing.lowerBound {
                result.append(existing)
            } else {
                merged = min(existing.lowerBound, merged.lowerBound)...max(existing.upperBound, merged.upperBound)
            }
        }
        result.append(merged)
        ranges = result.sorted { $0.lowerBound < $1.lowerBound }
    }

    mutating func formUnion(_ other: ScalarSet) { for range in other.ranges { insert(range) } }

    func contains(_ value: UInt32) -> Bool { ranges.contains { $0.contains(value) } }

    var complement: ScalarSet {
        var result = ScalarSet()
        var next: UInt32 = 0
        for range in ranges {
            if range.lowerBound > next { result.ranges.append(next...(range.lowerBound - 1)) }
            next = range.upperBound + 1
        }
        if next <= Self.maximum { result.ranges.append(next...Self.maximum) }
        return result
    }

    func removing(_ value: UInt32) -> ScalarSet {
        var result = ScalarSet()
        for range in ranges {
            guard range.contains(value) else {
                result.ranges.append(range)
                continue
            }
            if range.lowerBound < value { result.ranges.append(range.lowerBound...(value - 1)) }
            if value < range.upperBound { result.ranges.append((value + 1)...range.upperBound) }
        }
        return result
    }
}

/// Unicode scalar ranges as sequences of byte ranges over their UTF-8 encodings (the splitting of
/// Russ Cox's RE2 and Rust's `utf8-ranges`): each sequence's bytes are all the same length and
/// every combination of its ranges is a valid encoding of a scalar in the set. Surrogates never.
enum UTF8Ranges {
    static func sequences(_ set: ScalarSet) -> [[ClosedRange<UInt8>]] {
        var result: [[ClosedRange<UInt8>]] = []
        for range in set.ranges { split(range.lowerBound, range.upperBound, into: &result) }
        return result
    }

    private static func split(_ low: UInt32, _ high: UInt32, into result: inout [[ClosedRange<UInt8>]]) {
        guard low <= high else { return }
        if low < 0xD800, high > 0xDFFF {
            split(low, 0xD7FF, into: &result)
            split(0xE000, high, into: &result)
            return
        }
        let low = (0xD800...0xDFFF).contains(low) ? 0xE000 : low
        let high = (0xD800...0xDFFF).contains(high) ? 0xD7FF : high
        guard low <= high else { return }
        for boundary: UInt32 in [0x7F, 0x7FF, 0xFFFF] where low <= boundary && high > boundary {
            split(low, boundary, into: &result)
            split(boundary + 1, high, into: &result)
            return
        }
        if high <= 0x7F {
            result.append([UInt8(low)...UInt8(high)])
            return
        }
        for bits in 1..<4 {
            let mask: UInt32 = (1 << (6 * UInt32(bits))) - 1
            if low & ~mask != high & ~mask {
                if low & mask != 0 {
                    split(low, low | mask, into: &result)
                    split((low | mask) + 1, high, into: &result)
                    return
                }
                if high & mask != mask {
                    split(low, (high & ~mask) - 1, into: &result)
                    split(high & ~mask, high, into: &result)
                    return
                }
            }
        }
        let first = Array(String(Unicode.Scalar(low)!).utf8), last = Array(String(Unicode.Scalar(high)!).utf8)
        result.append(zip(first, last).map { $0...$1 })
    }
}

import EmberCore
import Foundation

/// Decodes JSON files into `Decodable` values with errors that name the file and the field.
///
/// Stricter than `JSONDecoder` alone: the text is first read by `JSONStrictReader`, which refuses
/// a key written twice in one object (Foundation silently keeps one of them), numbers too large
/// for a `Double`, nesting deeper than 64 levels and files above `maximumFileBytes`; after
/// decoding, every key the file has must be one the type knows (a misspelled optional field
/// would otherwise be ignored without a word).
public enum JSONFile {
    /// The largest file read: profiles and scenarios are a few kilobytes.
    public static let maximumFileBytes = 4 * 1_048_576

    /// Reads `path` and decodes it; every failure is a `DeviceError` naming the file and field.
    public static func decode<Value: Decodable>(path: String, as type: Value.Type = Value.self) throws(DeviceError) -> Value {
        try decode(read(path: path), file: path)
    }

    /// The bytes of `path`, at most `maximumFileBytes` of them (more is an error, not a truncation).
    static func read(path: String) throws(DeviceError) -> Data {
        do {
            return Data(try BoundedRead.file(atPath: path, limit: maximumFileBytes))
        } catch where error.code == .tooLarge {
            throw DeviceError(.invalidJSON, file: path, field: "",
                              reason: "is larger than \(maximumFileBytes / 1_048_576) MiB; a profile or scenario is a few kilobytes")
        } catch {
            throw DeviceError(.unreadableFile, file: path, field: "", reason: error.message)
        }
    }

    /// Decodes `data`, naming `file` in errors.
    public static func decode<Value: Decodable>(_ data: Data, file: String, as type: Value.Type = Value.self) throws(DeviceError) -> Value {
        guard data.count <= maximumFileBytes else {
            throw DeviceError(.invalidJSON, file: file, field: "",
                              reason: "is larger than \(maximumFileBytes / 1_048_576) MiB; a profile or scenario is a few kilobytes")
        }
        let document: JSONStrictReader.Document
        do {
            document = try JSONStrictReader.read(data)
        } catch {
            throw DeviceError(error.code, file: file, field: error.field, reason: error.reason)
        }
        let tree = document.tree
        let value: Value
        do {
            value = try JSONDecoder().decode(Value.self, from: data)
        } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
            // The text is valid JSON, so Foundation refused a number for an integer field without
            // saying which: find it.
            if let number = wholeNumberField(Value.self, data: data, candidates: document.nonIntegers) {
                throw DeviceError(.wrongType, file: file, field: number.path, reason: "must be a whole number, got \(number.text)")
            }
            throw DeviceError(.wrongType, file: file, field: "", reason: "has a number that does not fit its field (a fraction where a whole number belongs?)")
        } catch let error as DecodingError {
            throw describe(error, file: file)
        } catch let error as DeviceError {
            throw error
        } catch {
            throw DeviceError(.invalidJSON, file: file, field: "", reason: "\(error)")
        }
        if let encodable = value as? any Encodable {
            try refuseUnknownFields(in: tree, decoded: encodable, file: file)
        }
        return value
    }

    /// The number Foundation refused for an integer field: of the `candidates` (numbers with a
    /// fraction, an exponent or beyond `Int`, in file order), the last one whose replacement by
    /// 0 — with those before it — lets the document decode. Binary search: a few decodes.
    static func wholeNumberField<Value: Decodable>(_ type: Value.Type, data: Data,
                                                   candidates: [JSONStrictReader.NumberSite]) -> JSONStrictReader.NumberSite? {
        let bytes = [UInt8](data)
        func decodes(replacingFirst count: Int) -> Bool {
            var patched: [UInt8] = []
            patched.reserveCapacity(bytes.count)
            var position = 0
            for site in candidates.prefix(count) {
                patched += bytes[position..<site.range.lowerBound]
                patched.append(UInt8(ascii: "0"))
                position = site.range.upperBound
            }
            patched += bytes[position...]
            do {
                _ = try JSONDecoder().decode(Value.self, from: Data(patched))
                return true
            } catch DecodingError.dataCorrupted(let context) where context.codingPath.isEmpty {
                return false
            } catch {
                return true
            }
        }
        guard !candidates.isEmpty, decodes(replacingFirst: candidates.count) else { return nil }
        var low = 0, high = candidates.count  // decodes(low) is false, decodes(high) is true
        while high - low > 1 {
            let middle = (low + high) / 2
            if decodes(replacingFirst: middle) { high = middle } else { low = middle }
        }
        return candidates[high - 1]
    }

    /// Every key of `tree` must survive a round trip through the decoded value: a key the type
    /// does not know is dropped by decoding and missing when the value is encoded again.
    static func refuseUnknownFields(in tree: JSONValue, decoded value: any Encodable, file: String) throws(DeviceError) {
        guard let data = try? JSONEncoder().encode(value), let known = try? JSONStrictReader.read(data).tree else { return }
        if let (field, key, expected) = firstUnknownKey(tree, known: known, path: "") {
            let choices = expected.isEmpty ? "" : "; expected one of \(expected.joined(separator: ", "))"
            throw DeviceError(.unknownField, file: file, field: field, reason: "unknown field '\(key)'\(choices)")
        }
    }

    private static func firstUnknownKey(_ tree: JSONValue, known: JSONValue, path: String) -> (String, String, [String])? {
        switch (tree, known) {
        case (.object(let members), .object(let knownMembers)):
            for (key, value) in members {
                let field = path.isEmpty ? key : path + "." + key
                guard let match = knownMembers.first(where: { $0.0 == key }) else {
                    // An optional field written as null decodes to nil and is not encoded again.
                    if case .null = value { continue }
                    return (field, key, knownMembers.map(\.0).sorted())
                }
                if let found = firstUnknownKey(value, known: match.1, path: field) { return found }
            }
        case (.array(let elements), .array(let knownElements)):
            for (index, element) in elements.enumerated() where index < knownElements.count {
                if let found = firstUnknownKey(element, known: knownElements[index], path: path + "[\(index)]") { return found }
            }
        default:
            break
        }
        return nil
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var result = ""
        for key in codingPath {
            if let index = key.intValue {
                result += "[\(index)]"
            } else {
                result += result.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return result
    }

    static func describe(_ error: DecodingError, file: String) -> DeviceError {
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath + [key])
            return DeviceError(.missingField, file: file, field: field, reason: "is missing")
        case .typeMismatch(let type, let context):
            return DeviceError(.wrongType, file: file, field: path(context.codingPath),
                               reason: "expected \(typeName(type)); write plain numbers in the units the schema names (Profiles/README.md, Simulator/Scenarios/README.md)")
        case .valueNotFound(let type, let context):
            return DeviceError(.missingField, file: file, field: path(context.codingPath), reason: "is null; expected \(typeName(type))")
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
                return DeviceError(.invalidJSON, file: file, field: "", reason: "is not valid JSON" + (underlying.map { " (\($0))" } ?? ""))
            }
            return DeviceError(.invalidValue, file: file, field: path(context.codingPath), reason: context.debugDescription)
        @unknown default:
            return DeviceError(.invalidJSON, file: file, field: "", reason: "\(error)")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Double.Type, is Float.Type: return "a number"
        case is Int.Type: return "a whole number"
        case is String.Type: return "a string"
        case is Bool.Type: return "true or false"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "a \(name)"
        }
    }
}

/// The strict reading `JSONFile` needs, over the one JSON parser (`EmberCore.JSONValue.parse`):
/// it refuses what `JSONSerialization` lets through silently — a key written twice in one object,
/// numbers too large for a `Double` — and words its errors for profile and scenario authors,
/// naming the field by its dotted path and the line it is on.
enum JSONStrictReader {
    /// Deeper nesting is refused rather than recursed into.
    static let maximumDepth = 64

    struct Failure: Error {
        var code: DeviceError.Code
        var field: String
        var reason: String
    }

    /// Where a number that is not a plain integer stands: its bytes, its field and its text.
    typealias NumberSite = JSONValue.NumberSite

    /// The tree, and the numbers an integer field would refuse, in file order.
    struct Document {
        var tree: JSONValue
        var nonIntegers: [NumberSite]
    }

    static var options: JSONValue.ParseOptions {
        var options = JSONValue.ParseOptions()
        options.maximumDepth = maximumDepth
        options.allowsByteOrderMark = true
        options.refusesDuplicateKeys = true
        options.refusesOverflow = true
        // Foundation decodes the strings afterwards and says what it thinks of them.
        options.refusesInvalidUTF8 = false
        options.recordsNumbers = true
        return options
    }

    /// Reads a whole document.
    static func read(_ data: Data) throws(Failure) -> Document {
        let result: JSONValue.ParseResult
        do {
            result = try JSONValue.parse(bytes: [UInt8](data), options: options)
        } catch {
            throw failure(error)
        }
        let nonIntegers = result.numbers.filter { $0.text.contains(where: { ".eE".contains($0) }) || Int($0.text) == nil }
        return Document(tree: result.value, nonIntegers: nonIntegers)
    }

    /// A parse error in this reader's words: a syntax error refuses the whole file and its reason
    /// says the line and the field it is in; a bad value names its field.
    static func failure(_ error: JSONParseError) -> Failure {
        func syntax(_ reason: String) -> Failure {
            Failure(code: .invalidJSON, field: "",
                    reason: "is not valid JSON (line \(error.line)\(error.path.isEmpty ? "" : ", in \(error.path.prefix(80))"): \(reason))")
        }
        switch error.kind {
        case .tooDeep(let depth): return syntax("nested deeper than \(depth) levels")
        case .unexpectedEnd: return syntax("unexpected end of the file")
        case .unexpectedCharacter(let byte):
            return syntax((0x21..<0x7F).contains(byte) ? "unexpected character '\(Character(Unicode.Scalar(byte)))'"
                                                       : "unexpected byte 0x\(String(byte, radix: 16, uppercase: true))")
        case .nonFiniteNumber:
            return Failure(code: .invalidValue, field: error.path, reason: "must be a finite number; NaN and Infinity are not JSON numbers")
        case .negativeInfinity:
            return Failure(code: .invalidValue, field: error.path, reason: "must be a finite number; -Infinity is not a JSON number")
        case .expectedLiteral(let word): return syntax("expected \(word)")
        case .expectedKey: return syntax("expected a quoted field name")
        case .duplicateKey:
            return Failure(code: .duplicateField, field: error.path,
                           reason: "is written twice in the same object; keep one (readers disagree on which one counts)")
        case .expectedColon: return syntax("expected ':' after the field name")
        case .unclosedObject: return syntax("unexpected end of the file; expected '}'")
        case .unclosedArray: return syntax("unexpected end of the file; expected ']'")
        case .expectedCommaOrBrace: return syntax("expected ',' or '}' after the value")
        case .expectedCommaOrBracket: return syntax("expected ',' or ']' after the value")
        case .numberWithoutDigits: return syntax("a number needs digits")
        case .leadingZero: return syntax("a number must not start with 0")
        case .fractionWithoutDigits: return syntax("expected digits after the decimal point")
        case .exponentWithoutDigits: return syntax("expected digits in the exponent")
        case .numberOverflow(let text): return Failure(code: .invalidValue, field: error.path, reason: "\(text.prefix(40)) is too large for a number")
        case .unclosedString: return syntax("a string is not closed")
        case .controlCharacter: return syntax("a control character inside a string (write \\n, \\t)")
        case .invalidEscape: return syntax("an unknown escape in a string")
        case .invalidUnicodeEscape: return syntax("\\u needs four hex digits")
        case .highSurrogateAlone, .unpairedSurrogate: return syntax("an unpaired \\u surrogate")
        case .invalidUTF8: return syntax("invalid UTF-8 in a string")
        case .textAfterValue: return syntax("unexpected text after the end of the document")
        }
    }
}

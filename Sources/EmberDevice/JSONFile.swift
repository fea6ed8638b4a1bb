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
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
              let handle = FileHandle(forReadingAtPath: path) else {
            throw DeviceError(.unreadableFile, file: path, field: "", reason: "cannot read the file (missing, or not readable)")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maximumFileBytes + 1) ?? Data()
        } catch {
            throw DeviceError(.unreadableFile, file: path, field: "", reason: "cannot read the file (\(error.localizedDescription))")
        }
        guard data.count <= maximumFileBytes else {
            throw DeviceError(.invalidJSON, file: path, field: "",
                              reason: "is larger than \(maximumFileBytes / 1_048_576) MiB; a profile or scenario is a few kilobytes")
        }
        return data
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
    static func refuseUnknownFields(in tree: JSONTree, decoded value: any Encodable, file: String) throws(DeviceError) {
        guard let data = try? JSONEncoder().encode(value), let known = try? JSONStrictReader.read(data).tree else { return }
        if let (field, key, expected) = firstUnknownKey(tree, known: known, path: "") {
            let choices = expected.isEmpty ? "" : "; expected one of \(expected.joined(separator: ", "))"
            throw DeviceError(.unknownField, file: file, field: field, reason: "unknown field '\(key)'\(choices)")
        }
    }

    private static func firstUnknownKey(_ tree: JSONTree, known: JSONTree, path: String) -> (String, String, [String])? {
        switch (tree, known) {
        case (.object(let members), .object(let knownMembers)):
            for member in members {
                let field = path.isEmpty ? member.key : path + "." + member.key
                guard let match = knownMembers.first(where: { $0.key == member.key }) else {
                    // An optional field written as null decodes to nil and is not encoded again.
                    if case .null = member.value { continue }
                    return (field, member.key, knownMembers.map(\.key).sorted())
                }
                if let found = firstUnknownKey(member.value, known: match.value, path: field) { return found }
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

/// A JSON document as written: object members in file order, numbers as `Double`, strings
/// without their text (the checks need keys and numbers only).
indirect enum JSONTree: Sendable, Equatable {
    case object([Member])
    case array([JSONTree])
    case string
    case number(Double)
    case bool
    case null

    struct Member: Sendable, Equatable {
        var key: String
        var value: JSONTree
    }
}

/// A strict JSON reader (RFC 8259) that refuses what `JSONSerialization` lets through silently:
/// a key written twice in one object, and numbers too large for a `Double`. Errors name the field
/// by its dotted path and the line it is on.
struct JSONStrictReader {
    /// Deeper nesting is refused rather than recursed into.
    static let maximumDepth = 64

    struct Failure: Error {
        var code: DeviceError.Code
        var field: String
        var reason: String
    }

    /// Where a number that is not a plain integer stands: its bytes, its field and its text.
    struct NumberSite {
        var range: Range<Int>
        var path: String
        var text: String
    }

    /// The tree, and the numbers an integer field would refuse, in file order.
    struct Document {
        var tree: JSONTree
        var nonIntegers: [NumberSite]
    }

    private let bytes: [UInt8]
    private var offset = 0
    private var nonIntegers: [NumberSite] = []

    private init(_ bytes: [UInt8]) { self.bytes = bytes }

    /// Reads a whole document.
    static func read(_ data: Data) throws(Failure) -> Document {
        var reader = JSONStrictReader([UInt8](data))
        // A UTF-8 byte order mark is allowed before the document.
        if reader.bytes.starts(with: [0xEF, 0xBB, 0xBF]) { reader.offset = 3 }
        reader.skipSpace()
        let tree = try reader.value(path: "", depth: 0)
        reader.skipSpace()
        guard reader.offset == reader.bytes.count else { throw reader.syntax("", "unexpected text after the end of the document") }
        return Document(tree: tree, nonIntegers: reader.nonIntegers)
    }

    private var line: Int { bytes[..<min(offset, bytes.count)].reduce(1) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) } }

    /// A syntax error: the whole file is refused, the reason says the line and the field it is in.
    private func syntax(_ field: String, _ reason: String) -> Failure {
        Failure(code: .invalidJSON, field: "", reason: "is not valid JSON (line \(line)\(field.isEmpty ? "" : ", in \(field.prefix(80))"): \(reason))")
    }

    private mutating func skipSpace() {
        while offset < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[offset]) { offset += 1 }
    }

    private mutating func value(path: String, depth: Int) throws(Failure) -> JSONTree {
        guard depth < Self.maximumDepth else { throw syntax(path, "nested deeper than \(Self.maximumDepth) levels") }
        guard offset < bytes.count else { throw syntax(path, "unexpected end of the file") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return try object(path: path, depth: depth)
        case UInt8(ascii: "["): return try array(path: path, depth: depth)
        case UInt8(ascii: "\""):
            _ = try string(path: path)
            return .string
        case UInt8(ascii: "t"): try literal("true", path: path); return .bool
        case UInt8(ascii: "f"): try literal("false", path: path); return .bool
        case UInt8(ascii: "n"): try literal("null", path: path); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number(path: path)
        case UInt8(ascii: "N"), UInt8(ascii: "I"):
            throw Failure(code: .invalidValue, field: path, reason: "must be a finite number; NaN and Infinity are not JSON numbers")
        default:
            let byte = bytes[offset]
            throw syntax(path, (0x21..<0x7F).contains(byte) ? "unexpected character '\(Character(Unicode.Scalar(byte)))'"
                                                           : "unexpected byte 0x\(String(byte, radix: 16, uppercase: true))")
        }
    }

    private mutating func object(path: String, depth: Int) throws(Failure) -> JSONTree {
        offset += 1
        var members: [JSONTree.Member] = []
        var seen = Set<String>()
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else {
                throw syntax(path, "expected a quoted field name")
            }
            let key = try string(path: path)
            let field = path.isEmpty ? key : path + "." + key
            guard seen.insert(key).inserted else {
                throw Failure(code: .duplicateField, field: field,
                              reason: "is written twice in the same object; keep one (readers disagree on which one counts)")
            }
            skipSpace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw syntax(field, "expected ':' after the field name") }
            offset += 1
            skipSpace()
            members.append(JSONTree.Member(key: key, value: try value(path: field, depth: depth + 1)))
            skipSpace()
            guard offset < bytes.count else { throw syntax(path, "unexpected end of the file; expected '}'") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            if bytes[offset] == UInt8(ascii: "}") { offset += 1; return .object(members) }
            throw syntax(field, "expected ',' or '}' after the value")
        }
    }

    private mutating func array(path: String, depth: Int) throws(Failure) -> JSONTree {
        offset += 1
        var elements: [JSONTree] = []
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            return .array(elements)
        }
        while true {
            skipSpace()
            elements.append(try value(path: path + "[\(elements.count)]", depth: depth + 1))
            skipSpace()
            guard offset < bytes.count else { throw syntax(path, "unexpected end of the file; expected ']'") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            if bytes[offset] == UInt8(ascii: "]") { offset += 1; return .array(elements) }
            throw syntax(path + "[\(elements.count - 1)]", "expected ',' or ']' after the value")
        }
    }

    private mutating func literal(_ word: String, path: String) throws(Failure) {
        let expected = Array(word.utf8)
        guard bytes[offset...].starts(with: expected) else { throw syntax(path, "expected \(word)") }
        offset += expected.count
    }

    /// A number per the JSON grammar; one that overflows a `Double` is refused.
    private mutating func number(path: String) throws(Failure) -> JSONTree {
        let start = offset
        func digits() -> Int {
            let first = offset
            while offset < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[offset]) { offset += 1 }
            return offset - first
        }
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "I") {
            throw Failure(code: .invalidValue, field: path, reason: "must be a finite number; -Infinity is not a JSON number")
        }
        let integerStart = offset
        guard digits() > 0 else { throw syntax(path, "a number needs digits") }
        if bytes[integerStart] == UInt8(ascii: "0"), offset - integerStart > 1 { throw syntax(path, "a number must not start with 0") }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard digits() > 0 else { throw syntax(path, "expected digits after the decimal point") }
        }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "e") || bytes[offset] == UInt8(ascii: "E") {
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard digits() > 0 else { throw syntax(path, "expected digits in the exponent") }
        }
        let text = String(decoding: bytes[start..<offset], as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw Failure(code: .invalidValue, field: path, reason: "\(text.prefix(40)) is too large for a number")
        }
        if text.contains(where: { ".eE".contains($0) }) || Int(text) == nil {
            nonIntegers.append(NumberSite(range: start..<offset, path: path, text: text))
        }
        return .number(value)
    }

    /// A quoted string's text, escapes decoded; control characters and bad escapes are refused.
    private mutating func string(path: String) throws(Failure) -> String {
        offset += 1
        var scalars = String.UnicodeScalarView()
        var start = offset
        func flush() { scalars.append(contentsOf: String(decoding: bytes[start..<offset], as: UTF8.self).unicodeScalars) }
        while true {
            guard offset < bytes.count else { throw syntax(path, "a string is not closed") }
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                flush()
                offset += 1
                return String(scalars)
            }
            if byte < 0x20 { throw syntax(path, "a control character inside a string (write \\n, \\t)") }
            if byte != UInt8(ascii: "\\") {
                offset += 1
                continue
            }
            flush()
            offset += 1
            guard offset < bytes.count else { throw syntax(path, "a string is not closed") }
            let escape = bytes[offset]
            offset += 1
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
                var code = try hex4(path: path)
                if (0xD800..<0xDC00).contains(code), bytes[offset...].starts(with: [UInt8(ascii: "\\"), UInt8(ascii: "u")]) {
                    offset += 2
                    let low = try hex4(path: path)
                    guard (0xDC00..<0xE000).contains(low) else { throw syntax(path, "an unpaired \\u surrogate") }
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                guard let scalar = Unicode.Scalar(code) else { throw syntax(path, "an unpaired \\u surrogate") }
                scalars.append(scalar)
            default:
                throw syntax(path, "an unknown escape in a string")
            }
            start = offset
        }
    }

    private mutating func hex4(path: String) throws(Failure) -> UInt32 {
        guard offset + 4 <= bytes.count, let code = UInt32(String(decoding: bytes[offset..<offset + 4], as: UTF8.self), radix: 16) else {
            throw syntax(path, "\\u needs four hex digits")
        }
        offset += 4
        return code
    }
}

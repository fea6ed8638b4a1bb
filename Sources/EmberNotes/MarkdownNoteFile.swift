import Foundation

/// A note as a Markdown file: YAML front matter (title, tags, created, updated, pinned,
/// archived) between `---` lines, then the body exactly as stored.
///
/// ```markdown
/// ---
/// title: "Café résumé"
/// tags: ["ideas", "work"]
/// created: 2025-03-14T09:26:53.589Z
/// updated: 2025-03-15T08:00:00Z
/// pinned: false
/// archived: false
/// ---
/// The body, byte for byte.
/// ```
///
/// The reader accepts the YAML that such front matter uses in practice: plain, single- and
/// double-quoted scalars, flow (`[a, b]`) and block (`- a`) sequences, comments. A file without
/// front matter becomes a note titled by its first `# heading`, or else by its file name.
public enum MarkdownNoteFile: Sendable {
    /// The file's text for `note`.
    public static func render(_ note: Note) -> String {
        var text = "---\n"
        text += "title: \(quoted(note.title))\n"
        text += "tags: [\(note.tags.map(quoted).joined(separator: ", "))]\n"
        text += "created: \(Timestamp.iso8601(milliseconds: Timestamp.milliseconds(note.created)))\n"
        text += "updated: \(Timestamp.iso8601(milliseconds: Timestamp.milliseconds(note.updated)))\n"
        text += "pinned: \(note.isPinned)\n"
        text += "archived: \(note.isArchived)\n"
        text += "---\n"
        return text + note.body
    }

    /// A file name for `note`: its id, zero-padded, and a slug of its title (`0012-cafe-resume.md`).
    public static func fileName(for note: Note) -> String {
        let folded = note.title.folding(options: [.diacriticInsensitive, .caseInsensitive], locale: nil)
        var slug = ""
        for scalar in folded.unicodeScalars {
            if scalar.isASCII, CharacterSet.alphanumerics.contains(scalar) {
                slug.unicodeScalars.append(scalar)
            } else if !slug.isEmpty, !slug.hasSuffix("-") {
                slug += "-"
            }
            if slug.count >= 48 { break }
        }
        while slug.hasSuffix("-") { slug.removeLast() }
        let number = String(note.id.rawValue)
        let padded = String(repeating: "0", count: max(0, 4 - number.count)) + number
        return "\(padded)-\(slug.isEmpty ? "note" : slug).md"
    }

    /// Reads a file's text into a draft; `source` names the file in errors.
    public static func parse(_ text: String, source: String) throws(NotesError) -> NoteDraft {
        // Lines are found in the UTF-8 bytes: "\r\n" is one Character, so splitting the String on
        // "\n" would miss CRLF line ends. Each line keeps no terminator; `ends` is where the next starts.
        var lines: [Substring] = []
        var ends: [Int] = []
        var start = text.utf8.startIndex
        var offset = 0
        for index in text.utf8.indices where text.utf8[index] == UInt8(ascii: "\n") {
            lines.append(Substring(text.unicodeScalars[start..<index]))
            offset += text.utf8[start..<index].count + 1
            ends.append(offset)
            start = text.utf8.index(after: index)
        }
        lines.append(Substring(text.unicodeScalars[start...]))
        ends.append(text.utf8.count)
        func stripped(_ line: Substring) -> Substring {
            var line = line
            if line.hasPrefix("\u{FEFF}") { line = line.dropFirst() }
            while line.unicodeScalars.last == "\r" { line = Substring(line.unicodeScalars.dropLast()) }
            return line
        }

        guard let first = lines.first, stripped(first) == "---" else {
            return NoteDraft(title: titleWithoutFrontMatter(text, source: source), body: text)
        }
        guard let end = lines.indices.dropFirst().first(where: { stripped(lines[$0]) == "---" || stripped(lines[$0]) == "..." }) else {
            throw NotesError(.invalidFrontMatter, "\(source): the front matter that opens on line 1 has no closing --- line")
        }
        var fields = try FrontMatterReader(source: source).read(lines[1..<end].map(stripped), firstLineNumber: 2)

        // The body is every byte after the closing line's end.
        let body = String(decoding: text.utf8.dropFirst(ends[end]), as: UTF8.self)

        var draft = NoteDraft(title: "", body: body)
        if let title = fields.removeValue(forKey: "title") {
            draft.title = try title.value.string(key: "title", source: source, line: title.line)
        } else {
            draft.title = titleWithoutFrontMatter(body, source: source)
        }
        if let tags = fields.removeValue(forKey: "tags") { draft.tags = tags.value.list }
        for key in ["created", "updated"] {
            guard let field = fields.removeValue(forKey: key) else { continue }
            let text = try field.value.string(key: key, source: source, line: field.line)
            guard let milliseconds = Timestamp.parse(text) else {
                throw NotesError(.invalidFrontMatter, "\(source), line \(field.line): '\(key)' is \(text), not a date like 2025-03-14T09:26:53Z")
            }
            if key == "created" { draft.created = Timestamp.date(milliseconds: milliseconds) }
            else { draft.updated = Timestamp.date(milliseconds: milliseconds) }
        }
        for key in ["pinned", "archived"] {
            guard let field = fields.removeValue(forKey: key) else { continue }
            let text = try field.value.string(key: key, source: source, line: field.line)
            let flag: Bool
            switch text.lowercased() {
            case "true", "yes", "on": flag = true
            case "false", "no", "off", "": flag = false
            default: throw NotesError(.invalidFrontMatter, "\(source), line \(field.line): '\(key)' is \(text), not true or false")
            }
            if key == "pinned" { draft.isPinned = flag } else { draft.isArchived = flag }
        }
        return draft
    }

    /// The title of a file without front matter: its first `# heading`, else its file name.
    private static func titleWithoutFrontMatter(_ text: String, source: String) -> String {
        for line in text.split(whereSeparator: \.isNewline) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            if trimmed.hasPrefix("# ") { return trimmed.dropFirst(2).trimmingCharacters(in: .whitespaces) }
            break
        }
        let name = (source as NSString).lastPathComponent
        return (name as NSString).deletingPathExtension
    }

    /// A YAML double-quoted scalar; every character YAML would fold or refuse is escaped.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{85}", "\u{2028}", "\u{2029}", "\u{FEFF}":
                result += "\\u" + hex(scalar.value, digits: 4)
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    result += "\\x" + hex(scalar.value, digits: 2)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }
}

/// A front matter value: one scalar or a sequence of scalars.
enum FrontMatterValue: Equatable {
    case scalar(String)
    case sequence([String])

    func string(key: String, source: String, line: Int) throws(NotesError) -> String {
        switch self {
        case .scalar(let text): return text
        case .sequence: throw NotesError(.invalidFrontMatter, "\(source), line \(line): '\(key)' is a list, not one value")
        }
    }

    /// A sequence as is; a scalar as comma-separated items (`tags: work, ideas`).
    var list: [String] {
        switch self {
        case .sequence(let items): return items
        case .scalar(let text):
            return text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
    }
}

/// Reads `key: value` lines of YAML front matter.
struct FrontMatterReader {
    let source: String

    func read(_ lines: [Substring], firstLineNumber: Int) throws(NotesError) -> [String: (value: FrontMatterValue, line: Int)] {
        var fields: [String: (value: FrontMatterValue, line: Int)] = [:]
        var index = 0
        while index < lines.count {
            let lineNumber = firstLineNumber + index
            let line = lines[index]
            index += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            guard let colon = line.firstIndex(of: ":"), !line.first!.isWhitespace else {
                throw error(lineNumber, "expected 'key: value', found '\(trimmed)'")
            }
            let key = line[..<colon].trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty else { throw error(lineNumber, "a line starts with ':' and has no key") }
            guard fields[key] == nil else { throw error(lineNumber, "'\(key)' appears twice") }
            let rest = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if rest.isEmpty || rest.hasPrefix("#") {
                // A block sequence follows, or the value is empty.
                var items: [String] = []
                while index < lines.count {
                    let item = lines[index].trimmingCharacters(in: .whitespaces)
                    if item.isEmpty || item.hasPrefix("#") { index += 1; continue }
                    guard item == "-" || item.hasPrefix("- ") else { break }
                    guard lines[index].first?.isWhitespace == true || lines[index].first == "-" else { break }
                    let value = item.dropFirst().trimmingCharacters(in: .whitespaces)
                    items.append(try scalar(Substring(value), line: firstLineNumber + index))
                    index += 1
                }
                fields[key] = (items.isEmpty ? .scalar("") : .sequence(items), lineNumber)
            } else if rest.hasPrefix("[") {
                fields[key] = (.sequence(try flowSequence(Substring(rest), line: lineNumber)), lineNumber)
            } else {
                fields[key] = (.scalar(try scalar(Substring(rest), line: lineNumber)), lineNumber)
            }
        }
        return fields
    }

    private func error(_ line: Int, _ message: String) -> NotesError {
        NotesError(.invalidFrontMatter, "\(source), line \(line): \(message)")
    }

    /// One scalar that fills `text` (after which only a comment may follow).
    private func scalar(_ text: Substring, line: Int) throws(NotesError) -> String {
        var cursor = text[...]
        let value = try scalar(&cursor, line: line, stoppingAt: [])
        let rest = cursor.trimmingCharacters(in: .whitespaces)
        guard rest.isEmpty || rest.hasPrefix("#") else {
            throw error(line, "unexpected '\(rest)' after the value")
        }
        return value
    }

    /// Reads a scalar from the front of `cursor`; a plain scalar ends at a character in `stops`
    /// or at ` #`.
    private func scalar(_ cursor: inout Substring, line: Int, stoppingAt stops: Set<Character>) throws(NotesError) -> String {
        cursor = cursor.drop(while: { $0 == " " || $0 == "\t" })
        guard let first = cursor.first else { return "" }
        if first == "\"" { return try doubleQuoted(&cursor, line: line) }
        if first == "'" { return try singleQuoted(&cursor, line: line) }
        var value = ""
        var previous: Character = " "
        while let character = cursor.first, !stops.contains(character), !(character == "#" && previous == " ") {
            value.append(character)
            previous = character
            cursor = cursor.dropFirst()
        }
        return value.trimmingCharacters(in: .whitespaces)
    }

    private func doubleQuoted(_ cursor: inout Substring, line: Int) throws(NotesError) -> String {
        var scalars = cursor.unicodeScalars.dropFirst()
        var value = String.UnicodeScalarView()
        while let scalar = scalars.first {
            scalars = scalars.dropFirst()
            if scalar == "\"" {
                cursor = Substring(scalars)
                return String(value)
            }
            guard scalar == "\\" else { value.append(scalar); continue }
            guard let escape = scalars.first else { break }
            scalars = scalars.dropFirst()
            switch escape {
            case "n": value.append("\n")
            case "t", "\t": value.append("\t")
            case "r": value.append("\r")
            case "0": value.append("\0")
            case "\"", "\\", "/", " ": value.append(escape)
            case "N": value.append("\u{85}")
            case "L": value.append("\u{2028}")
            case "P": value.append("\u{2029}")
            case "_": value.append("\u{A0}")
            case "x", "u", "U":
                let digits = escape == "x" ? 2 : escape == "u" ? 4 : 8
                let hexDigits = String(String.UnicodeScalarView(scalars.prefix(digits)))
                guard hexDigits.count == digits, let code = UInt32(hexDigits, radix: 16), let decoded = Unicode.Scalar(code) else {
                    throw error(line, "'\\\(escape)\(hexDigits)' is not a valid escape")
                }
                value.append(decoded)
                scalars = scalars.dropFirst(digits)
            default:
                throw error(line, "'\\\(escape)' is not a YAML escape")
            }
        }
        throw error(line, "a double-quoted value does not end on its line")
    }

    private func singleQuoted(_ cursor: inout Substring, line: Int) throws(NotesError) -> String {
        var rest = cursor.dropFirst()
        var value = ""
        while let character = rest.first {
            rest = rest.dropFirst()
            if character == "'" {
                if rest.first == "'" {
                    value.append("'")
                    rest = rest.dropFirst()
                    continue
                }
                cursor = rest
                return value
            }
            value.append(character)
        }
        throw error(line, "a single-quoted value does not end on its line")
    }

    /// `[a, "b", 'c']` on one line.
    private func flowSequence(_ text: Substring, line: Int) throws(NotesError) -> [String] {
        var cursor = text.dropFirst()
        var items: [String] = []
        while true {
            cursor = cursor.drop(while: { $0 == " " || $0 == "\t" })
            if cursor.first == "]" {
                cursor = cursor.dropFirst()
                break
            }
            guard !cursor.isEmpty else { throw error(line, "a [list] does not close on its line") }
            let item = try scalar(&cursor, line: line, stoppingAt: [",", "]"])
            if !item.isEmpty { items.append(item) }
            cursor = cursor.drop(while: { $0 == " " || $0 == "\t" })
            guard !cursor.isEmpty else { throw error(line, "a [list] does not close on its line") }
            if cursor.first == "," { cursor = cursor.dropFirst(); continue }
            guard cursor.first == "]" else { throw error(line, "expected ',' or ']' in the list") }
        }
        let rest = cursor.trimmingCharacters(in: .whitespaces)
        guard rest.isEmpty || rest.hasPrefix("#") else { throw error(line, "unexpected '\(rest)' after the list") }
        return items
    }
}

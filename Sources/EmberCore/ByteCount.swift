/// Formats and parses byte counts the way people write them (`160MiB`, `1.5 GB`).
public enum ByteCount {
    /// A count as a short binary-unit string, e.g. `93.8 MiB`.
    public static func format(_ bytes: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(bytes)
        var unit = 0
        while abs(value) >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let rounded = (value * 10).rounded() / 10
        return "\(rounded) \(units[unit])"
    }

    /// The largest count ``parse(_:)`` gives (`Int.max` bytes, 8 EiB).
    public static let largest = Int.max

    /// Parses `160MiB`, `160M` (binary), `1GB` (decimal), `2TiB`, `512k`, or a plain number of bytes;
    /// nil for anything else or a count above ``largest`` (``problem(parsing:)`` says which).
    public static func parse(_ text: String) -> Int? {
        guard case let .bytes(count) = interpret(text) else { return nil }
        return count
    }

    /// Why `text` is not a byte count, as a sentence fragment for an option's message
    /// (`"'12XB' is not a size like 160MiB, 1.5GiB, 500MB or 1TiB"`); nil when it is one.
    public static func problem(parsing text: String) -> String? {
        switch interpret(text) {
        case .bytes: nil
        case .syntax: "'\(text)' is not a size like 160MiB, 1.5GiB, 500MB or 1TiB"
        case .tooLarge: "'\(text)' is more than the largest size, \(largest) bytes (8 EiB)"
        }
    }

    private enum Interpretation { case bytes(Int), syntax, tooLarge }

    private static func interpret(_ text: String) -> Interpretation {
        let trimmed = text.trimmingCharacters(in: " ")
        var numberPart = ""
        var unitPart = ""
        for character in trimmed {
            if unitPart.isEmpty, character.isNumber || character == "." {
                numberPart.append(character)
            } else if character != " " {
                unitPart.append(character)
            }
        }
        guard let number = Double(numberPart), number >= 0, number.isFinite else { return .syntax }
        let multiplier: Double
        switch unitPart.lowercased() {
        case "", "b": multiplier = 1
        case "k", "kib": multiplier = 1024
        case "kb": multiplier = 1000
        case "m", "mib": multiplier = 1024 * 1024
        case "mb": multiplier = 1_000_000
        case "g", "gib": multiplier = 1024 * 1024 * 1024
        case "gb": multiplier = 1_000_000_000
        case "t", "tib": multiplier = 1024 * 1024 * 1024 * 1024
        case "tb": multiplier = 1_000_000_000_000
        default: return .syntax
        }
        let value = number * multiplier
        guard value < Double(Int.max) else { return .tooLarge }
        return .bytes(Int(value))
    }
}

extension String {
    fileprivate func trimmingCharacters(in character: Character) -> Substring {
        var slice = self[...]
        while slice.first == character { slice = slice.dropFirst() }
        while slice.last == character { slice = slice.dropLast() }
        return slice
    }
}

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

    /// Parses `160MiB`, `160M` (binary), `1GB` (decimal), `512k`, or a plain number of bytes.
    public static func parse(_ text: String) -> Int? {
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
        guard let number = Double(numberPart), number >= 0 else { return nil }
        let multiplier: Double
        switch unitPart.lowercased() {
        case "", "b": multiplier = 1
        case "k", "kib": multiplier = 1024
        case "kb": multiplier = 1000
        case "m", "mib": multiplier = 1024 * 1024
        case "mb": multiplier = 1_000_000
        case "g", "gib": multiplier = 1024 * 1024 * 1024
        case "gb": multiplier = 1_000_000_000
        default: return nil
        }
        let value = number * multiplier
        guard value < Double(Int.max) else { return nil }
        return Int(value)
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

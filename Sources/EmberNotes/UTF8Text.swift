/// Strict UTF-8 decoding for text arriving from outside (files, standard input, arguments):
/// invalid bytes are refused, never silently replaced.
public enum UTF8Text: Sendable {
    /// The offset of the first byte that does not belong to well-formed UTF-8 (overlong forms,
    /// surrogates and code points past U+10FFFF count as ill-formed), or nil when all is well formed.
    public static func firstInvalidOffset(in bytes: some Collection<UInt8>) -> Int? {
        let bytes = Array(bytes)
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            let length: Int
            var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
            switch lead {
            case 0x00...0x7F: index += 1; continue
            case 0xC2...0xDF: length = 2
            case 0xE0: length = 3; lower = 0xA0
            case 0xE1...0xEC, 0xEE...0xEF: length = 3
            case 0xED: length = 3; upper = 0x9F
            case 0xF0: length = 4; lower = 0x90
            case 0xF1...0xF3: length = 4
            case 0xF4: length = 4; upper = 0x8F
            default: return index
            }
            guard index + length <= bytes.count else { return index }
            // Only the first continuation byte has the narrowed range.
            guard (lower...upper).contains(bytes[index + 1]) else { return index }
            for offset in 2..<length where !(0x80...0xBF).contains(bytes[index + offset]) {
                return index
            }
            index += length
        }
        return nil
    }

    /// The bytes as a string, or ``NotesError/Code/invalidUTF8`` naming `source` and the offset.
    /// - Parameter consequence: what did not happen because of it ("nothing was imported").
    public static func decode(_ bytes: some Collection<UInt8>, source: String, consequence: String) throws(NotesError) -> String {
        if let offset = firstInvalidOffset(in: bytes) {
            throw NotesError(.invalidUTF8, "\(source) is not valid UTF-8 (the first bad byte is at offset \(offset)); \(consequence)")
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Turns generated token ids into text that is always whole UTF-8: bytes of a character split
/// across tokens are held back until the character is complete.
public struct StreamingDetokenizer: Sendable {
    public let tokenizer: any Tokenizer
    public let renderSpecial: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: any Tokenizer, renderSpecial: Bool = false) {
        self.tokenizer = tokenizer
        self.renderSpecial = renderSpecial
    }

    /// The text `id` completes; empty while a multi-byte character is still incomplete.
    public mutating func append(_ id: Int32) -> String {
        pending += tokenizer.pieceBytes(id, renderSpecial: renderSpecial)
        let complete = completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Whatever is held back, with invalid bytes replaced by U+FFFD.
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of the longest prefix that does not end inside an incomplete UTF-8 sequence.
    /// A sequence that can never complete (an invalid lead byte) is let through to be repaired.
    func completePrefixLength(_ bytes: [UInt8]) -> Int {
        var index = bytes.count
        var continuation = 0
        while index > 0, continuation < 4 {
            let byte = bytes[index - 1]
            if byte & 0xC0 == 0x80 {
                continuation += 1
                index -= 1
                continue
            }
            let needed: Int
            switch byte {
            case 0xC0..<0xE0: needed = 1
            case 0xE0..<0xF0: needed = 2
            case 0xF0..<0xF8: needed = 3
            default: needed = 0
            }
            // The sequence starting at index-1 is incomplete: hold it back.
            return continuation < needed ? index - 1 : bytes.count
        }
        return bytes.count
    }
}

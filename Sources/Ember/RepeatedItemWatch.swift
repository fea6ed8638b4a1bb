import EmberCore
import EmberLM
import Foundation

/// Watches a JSON document as it is generated and says when a list starts repeating itself.
///
/// Greedy decoding is deterministic: once a small model writes an item of a list a second time,
/// it has entered a loop and will fill the list to its `maxItems` with copies. So at the first
/// item equal to an earlier one of the same list (equal as `ExtractionGrounding.identity` sees
/// it: same words, same values), the watch gives the text up to the end of the item before it;
/// the caller ends the generation there and completes the document with the grammar's shortest
/// completion (closing the list).
public struct RepeatedItemWatch: Sendable {
    private var bytes: [UInt8] = []
    private var position = 0
    private var inString = false
    private var escaped = false
    /// One open object or array.
    private struct Frame: Sendable {
        var isArray: Bool
        /// Where the item being written starts (nil between items).
        var itemStart: Int?
        /// Where the comma before the item being written stands (nil for the first item).
        var commaBefore: Int?
        var items: Set<String> = []
    }
    private var frames: [Frame] = []

    public init() {}

    /// Adds a piece of the document; returns the text to keep (the document so far without the
    /// repeated item and the comma before it) when the piece completes a repeated item, else nil.
    public mutating func append(_ piece: String) -> String? {
        bytes += Array(piece.utf8)
        while position < bytes.count {
            defer { position += 1 }
            let byte = bytes[position]
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                continue
            case UInt8(ascii: ","):
                guard var frame = frames.last, frame.isArray else { continue }
                if let start = frame.itemStart {
                    let identity = Self.identity(bytes[start..<position])
                    if !frame.items.insert(identity).inserted {
                        let end = frame.commaBefore ?? start
                        return String(decoding: bytes[..<end], as: UTF8.self)
                    }
                }
                frame.itemStart = nil
                frame.commaBefore = position
                frames[frames.count - 1] = frame
                continue
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                frames.removeLast(frames.isEmpty ? 0 : 1)
                continue
            default:
                break
            }
            if let last = frames.indices.last, frames[last].isArray, frames[last].itemStart == nil {
                frames[last].itemStart = position
            }
            if byte == UInt8(ascii: "\"") {
                inString = true
            } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
                frames.append(Frame(isArray: byte == UInt8(ascii: "[")))
            }
        }
        return nil
    }

    static func identity(_ item: ArraySlice<UInt8>) -> String {
        let text = String(decoding: item, as: UTF8.self)
        guard let value = try? JSONValue.parse(text) else { return text.trimmingCharacters(in: .whitespacesAndNewlines) }
        return ExtractionGrounding.identity(of: value)
    }
}

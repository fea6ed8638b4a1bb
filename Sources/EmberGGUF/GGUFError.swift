/// Why a GGUF file was rejected: what is wrong, in which field, at which byte.
public struct GGUFError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case io
        case badMagic
        case unsupportedVersion
        case truncated
        case invalidValue
        case overflow
        case invalidUTF8
        case unknownType
        case outOfBounds
        case overlap
        case misaligned
        case duplicate
    }

    public let kind: Kind
    /// The field being read, e.g. `tensor 'blk.0.attn_q.weight' dimension 1`.
    public let field: String
    /// Absolute byte offset in the file where the field starts.
    public let offset: Int
    public let message: String

    public init(_ kind: Kind, field: String, offset: Int, _ message: String) {
        self.kind = kind
        self.field = field
        self.offset = offset
        self.message = message
    }

    /// `GGUF: <field> at byte <offset>: <message>`; file-system errors have no byte to name.
    public var description: String {
        kind == .io ? "GGUF: \(field): \(message)" : "GGUF: \(field) at byte \(offset): \(message)"
    }
}

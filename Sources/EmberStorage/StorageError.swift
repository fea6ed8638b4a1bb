/// Why a container could not be written, opened, read or verified.
///
/// Damage found in a container names where it is: the chunk index and the tensor the chunk belongs
/// to (`chunk 17 of tensor 'blk.3.ffn_up.weight'`), so a person can tell which part to fetch again.
public struct StorageError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What kind of failure this is; tests and callers branch on it, people read ``message``.
    public enum Code: String, Sendable, Equatable {
        /// A file could not be opened, read, written or renamed.
        case io
        /// The file is not a container (wrong magic) or is a container this version cannot read.
        case notAContainer
        case unsupportedVersion
        /// The file is shorter or longer than its header says.
        case truncated
        /// A header, index or seek-table field is out of range or inconsistent.
        case malformed
        /// A checksum did not match: the bytes changed since the container was written.
        case checksumMismatch
        /// zstd refused a frame, or a frame decoded to the wrong number of bytes.
        case decodeFailed
        /// The GGUF given to `pack` could not be read.
        case invalidModel
        /// No tensor has this name.
        case unknownTensor
        /// A tensor does not fit in the pager's memory budget.
        case budgetExceeded
        /// A patch does not belong to the container it is applied to, or lacks a chunk.
        case patchMismatch
        /// zstd could not compress (out of memory).
        case compressionFailed
    }

    public let code: Code
    public let message: String
    /// The chunk where damage was found, when there is one.
    public let chunk: Int?
    /// The tensor that chunk belongs to (nil for chunks of the GGUF's header and padding).
    public let tensor: String?

    public init(_ code: Code, _ message: String, chunk: Int? = nil, tensor: String? = nil) {
        self.code = code
        self.message = message
        self.chunk = chunk
        self.tensor = tensor
    }

    public var description: String { message }
}

extension StorageError {
    /// "chunk 17 of tensor 'x'" or "chunk 0 (GGUF header and padding)".
    static func place(chunk: Int, tensor: String?) -> String {
        if let tensor { return "chunk \(chunk) of tensor '\(tensor)'" }
        return "chunk \(chunk) (GGUF header and padding)"
    }
}

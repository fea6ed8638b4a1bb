/// Errors from loading and running a language model, each with a message a person can act on.
public struct LanguageModelError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case unsupportedArchitecture
        case missingMetadata
        case missingTensor
        case tensorShape
        case unsupportedTensorType
        case invalidInput
        case contextFull
        case cancelled
        /// The model, context or cache does not fit the memory budget.
        case memoryBudget
        /// The model computed NaN or infinite logits (damaged or hostile weights).
        case nonFinite
        /// A constrained output (`OutputFormat`) was not complete when the generation had to stop.
        case outputIncomplete
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

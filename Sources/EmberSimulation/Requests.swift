import EmberScheduler

/// One piece of model work in a simulation, and how far it got.
public struct SimulatedRequest: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable { case chat, summarize, background }

    public let id: Int
    public let label: String
    public let kind: Kind
    public let requestClass: RequestClass
    public let priority: Int
    public let arrival: Double
    /// Absolute time by which it must finish, if any.
    public let deadline: Double?
    /// The prompt text (real-token mode), or nil to use `promptTokens` of synthetic text.
    public let prompt: String?
    public let promptTokens: Int
    public let responseTokens: Int
    public let maxTokens: Int
    /// Index of the scenario event that made it, and which repeat of it this is (0 first).
    let eventIndex: Int
    let occurrence: Int

    // Progress.
    public internal(set) var started: Double?
    public internal(set) var promptTokenCount: Int?
    public internal(set) var prefilledTokens = 0
    public internal(set) var generatedTokens = 0
    public internal(set) var firstTokenTime: Double?
    public internal(set) var lastTokenTime: Double?
    public internal(set) var finishedTime: Double?
    public internal(set) var text = ""

    public var isFinished: Bool { finishedTime != nil }
    public var isPrefilled: Bool { promptTokenCount.map { prefilledTokens >= $0 } ?? false }
    public var timeToFirstToken: Double? { firstTokenTime.map { $0 - arrival } }
    public var missedDeadline: Bool {
        guard let deadline else { return false }
        return (finishedTime ?? .infinity) > deadline
    }
    /// Decode speed after the first token.
    public var decodeTokensPerSecond: Double? {
        guard let first = firstTokenTime, let last = lastTokenTime, generatedTokens > 1, last > first else { return nil }
        return Double(generatedTokens - 1) / (last - first)
    }
}

extension SimulatedRequest {
    /// What a scheduling policy sees of it.
    var snapshot: RequestSnapshot {
        RequestSnapshot(id: id, requestClass: requestClass, priority: priority, arrival: arrival, deadline: deadline,
                        promptTokens: promptTokenCount ?? promptTokens, prefilledTokens: prefilledTokens,
                        generatedTokens: generatedTokens, maxTokens: kindMaxTokens)
    }

    /// The most tokens the reply can have.
    var kindMaxTokens: Int { maxTokens }
}

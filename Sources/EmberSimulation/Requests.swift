/// How urgent a request is: interactive work has a person waiting; background work has a deadline.
public enum RequestClass: String, Sendable, Codable, Equatable {
    case interactive
    case background
}

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
    /// Index of the scenario event that made it (for back-to-back repeats).
    let eventIndex: Int

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

/// What a policy sees when it picks the next step.
public struct SchedulingContext {
    public let time: Double
    /// Requests that have arrived and are not finished, in arrival order.
    public let pending: [SimulatedRequest]
    public let thermalStatus: EmberDeviceThermalStatus
    public let thermalHeadroom: Double
    public let batteryPercent: Double
    public let isCharging: Bool
    public let isPowerSaveMode: Bool
    public let defaultThreads: Int
}

/// What to do next on the one model owner.
public enum SchedulingDecision: Equatable, Sendable {
    /// Run one step (a prompt chunk or a token) of request `id` on `threads`.
    case run(id: Int, threads: Int)
    /// Leave the CPU idle until `until` (or the next arrival or event, whichever is first).
    case idle(until: Double)
}

/// Picks the next step from the pending requests and the phone's state.
public protocol SchedulingPolicy {
    var name: String { get }
    mutating func decide(_ context: SchedulingContext) -> SchedulingDecision
}

/// Today's behaviour: run whatever is pending, interactive first, as fast as possible.
public struct RacePolicy: SchedulingPolicy {
    public init() {}
    public var name: String { "race" }

    public func decide(_ context: SchedulingContext) -> SchedulingDecision {
        guard let next = Self.mostUrgent(context.pending) else { return .idle(until: .infinity) }
        return .run(id: next.id, threads: context.defaultThreads)
    }

    /// Interactive before background; then higher priority; then earlier deadline; then arrival.
    public static func mostUrgent(_ pending: [SimulatedRequest]) -> SimulatedRequest? {
        pending.min { left, right in
            if left.requestClass != right.requestClass { return left.requestClass == .interactive }
            if left.priority != right.priority { return left.priority > right.priority }
            let leftDeadline = left.deadline ?? .infinity, rightDeadline = right.deadline ?? .infinity
            if leftDeadline != rightDeadline { return leftDeadline < rightDeadline }
            return left.id < right.id
        }
    }
}

import EmberDevice
public typealias EmberDeviceThermalStatus = ThermalStatus

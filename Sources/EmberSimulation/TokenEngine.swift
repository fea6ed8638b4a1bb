import EmberLM
import EmberScheduler
import EmberTokenizers

/// Produces the tokens of simulated requests for the executor: really (a language model) or as
/// counts only.
///
/// The simulation charges time and energy from the work model either way, so runs are
/// deterministic whatever machine they run on.
public protocol TokenEngine: ExecutionEngine where Request == SimulatedRequest {}

/// Counts only: prompts of `prompt_tokens` (or about four characters a token), replies of
/// `response_tokens`.
public struct CostModelEngine: TokenEngine {
    /// Tokens produced so far and the reply's length, by request.
    private var replies: [Int: (generated: Int, length: Int)] = [:]

    public init() {}

    public mutating func begin(_ id: Int, _ request: SimulatedRequest) -> Int {
        replies[id] = (0, min(request.responseTokens, request.maxTokens))
        return request.promptTokens
    }

    public func prefill(_ id: Int, tokens: Int, threads: Int) {}

    public mutating func next(_ id: Int, threads: Int) -> GeneratedToken? {
        guard var reply = replies[id], reply.generated < reply.length else { return nil }
        reply.generated += 1
        replies[id] = reply
        return GeneratedToken(id: 0, text: "")
    }

    public mutating func end(_ id: Int) -> String {
        replies[id] = nil
        return ""
    }
}

/// Real tokens from a language model — the app's `ModelEngine` — with chat-formatted prompts
/// (synthetic notes-like text when a scenario gives only a token count), sampling seeded per
/// request, and prompts trimmed to leave room for the reply.
public final class LanguageModelEngine: TokenEngine {
    public let engine: ModelEngine
    let sampling: SamplingParameters

    public var model: LanguageModel { engine.model }

    public init(model: LanguageModel, sampling: SamplingParameters, contextLength: Int = 2048, threadCount: Int) {
        engine = ModelEngine(model: model, contextLength: contextLength, threadCount: threadCount, trimsLongPrompts: true)
        self.sampling = sampling
    }

    public func begin(_ id: Int, _ request: SimulatedRequest) throws -> Int {
        let text = request.prompt ?? SyntheticText.prompt(for: request)
        var parameters = sampling
        parameters.seed = sampling.seed &+ UInt64(request.id)
        let prompt: Prompt = model.chatTemplate != nil ? .chat([.init(role: .user, content: text)]) : .text(text)
        return try engine.begin(id, ScheduledRequest(prompt: prompt, maxTokens: request.maxTokens, sampling: parameters,
                                                     requestClass: request.requestClass, priority: request.priority))
    }

    // The simulated phone's thread counts are not this machine's: every step uses the engine's threads.

    public func prefill(_ id: Int, tokens: Int, threads: Int) throws {
        try engine.prefill(id, tokens: tokens, threads: engine.threadCount)
    }

    public func next(_ id: Int, threads: Int) throws -> GeneratedToken? {
        try engine.next(id, threads: engine.threadCount)
    }

    public func next(batch ids: [Int], threads: Int) throws -> [GeneratedToken?] {
        try engine.next(batch: ids, threads: engine.threadCount)
    }

    public func isContextFull(_ id: Int) -> Bool { engine.isContextFull(id) }

    public func end(_ id: Int) -> String { engine.end(id) }

    public func memoryPressure() -> Int { engine.memoryPressure() }
}

/// Deterministic filler text for prompts given only as a token count.
enum SyntheticText {
    static let sentences = [
        "The team met on Tuesday to review the launch plan and agreed to move the beta by one week.",
        "Battery life matters more than peak speed when the phone is used all day.",
        "Buy oat milk, two lemons, fresh basil and a loaf of rye bread on the way home.",
        "The museum opens at nine, and the guided tour of the old harbour starts at eleven.",
        "Remember to send the signed lease to the landlord before the end of the month.",
        "The recipe needs the onions softened slowly for twenty minutes before the stock goes in.",
        "Our flight lands at six in the evening, so the hotel check-in should be easy.",
        "The quarterly report shows revenue up eight percent while support costs stayed flat.",
    ]

    /// About `request.promptTokens` tokens of notes-like text (roughly 0.75 words a token).
    static func prompt(for request: SimulatedRequest) -> String {
        var words = 0
        var text = request.kind == .summarize ? "Summarize this note in two sentences.\n\n" : ""
        var index = request.id
        let target = Int(Double(request.promptTokens) * 0.75)
        while words < target {
            let sentence = sentences[index % sentences.count]
            text += sentence + " "
            words += sentence.split(separator: " ").count
            index += 3
        }
        return text
    }
}

import EmberCore
import EmberLM
import Synchronization

/// How a chat session generates its replies.
public struct ChatOptions: Sendable, Equatable {
    /// Longest reply, in tokens.
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Start each turn from what the KV cache already holds of the conversation (only the new
    /// turn's tokens are evaluated). Off: the whole history is evaluated again (for comparisons).
    public var reusesCache: Bool
    /// The shape every reply must have (nil: free text): a JSON Schema, a regular expression or a
    /// choice (`OutputFormat`); a reply that cannot complete within `maxTokens` fails the turn.
    public var outputFormat: OutputFormat?

    public init(maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(), reusesCache: Bool = true,
                outputFormat: OutputFormat? = nil) {
        self.outputFormat = outputFormat
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.reusesCache = reusesCache
    }
}

/// A conversation: its history, and replies generated from the engine's KV cache, which still
/// holds the previous turns — each turn renders the whole conversation through the chat template,
/// and the generator evaluates only the tokens after the prefix the cache shares with it.
///
/// When the conversation outgrows the context, the oldest exchanges leave the window the model
/// sees (the instructions stay); a reply that fills the context mid-way keeps the instructions and
/// the newer half of the rest. One turn at a time; cancel a turn by cancelling the task awaiting
/// it or dropping its stream: prompt processing stops within one chunk.
public final class ChatSession: Sendable {
    public let engine: Engine
    /// The system message.
    public let instructions: String?
    public let options: ChatOptions

    private struct State {
        /// User and assistant messages, oldest first (the instructions are not in it).
        var history: [ChatMessage] = []
        /// Index in `history` of the oldest message the model still sees.
        var windowStart = 0
        var busy = false
        var lastStatistics: GenerationStatistics?
    }

    private let state = Mutex(State())

    init(engine: Engine, instructions: String?, options: ChatOptions) {
        self.engine = engine
        self.instructions = instructions
        self.options = options
    }

    /// The conversation so far (user and assistant messages, without the instructions).
    public var history: [ChatMessage] { state.withLock { $0.history } }

    /// Figures of the last finished turn (time to first token, prompt tokens evaluated, speeds).
    public var lastStatistics: GenerationStatistics? { state.withLock { $0.lastStatistics } }

    /// The reply to `message`, once complete; it joins the history.
    public func respond(to message: String) async throws -> String {
        var reply = ""
        for try await piece in streamResponse(to: message) { reply += piece }
        if Task.isCancelled { throw EngineError(.cancelled, "the reply was cancelled") }
        return reply
    }

    /// The reply to `message` as it is generated, piece by piece (each piece whole UTF-8 text).
    /// The exchange joins the history when the reply ends; a cancelled turn leaves no trace.
    public func streamResponse(to message: String) -> AsyncThrowingStream<String, Error> {
        let events = events(to: message)
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: String.self)
        let task = Task {
            do {
                for try await event in events {
                    if case .token(_, let text) = event, !text.isEmpty { continuation.yield(text) }
                }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { termination in
            if case .cancelled = termination { task.cancel() }
        }
        return stream
    }

    /// Marks the session answering; false when a turn is already in flight.
    func markBusy() -> Bool {
        state.withLock { state in
            if state.busy { return false }
            state.busy = true
            return true
        }
    }

    /// Ends the turn in flight, adding the exchange to the history when it completed.
    func end(_ exchange: (message: String, reply: String, statistics: GenerationStatistics)?) {
        state.withLock { state in
            state.busy = false
            guard let exchange else { return }
            state.history.append(ChatMessage(role: .user, content: exchange.message))
            state.history.append(ChatMessage(role: .assistant, content: exchange.reply))
            state.lastStatistics = exchange.statistics
        }
    }

    /// The generation request of the next turn: the conversation the model sees (the oldest
    /// exchanges dropped while it leaves less than a quarter of the context for the reply).
    func makeRequest(for message: String) throws -> GenerationRequest {
        let model = engine.model
        guard model.chatTemplate != nil else {
            throw EngineError(.invalidConfiguration, "\(model.path) has no chat template Ember recognises; it cannot hold a chat")
        }
        let system = instructions.map { [ChatMessage(role: .system, content: $0)] } ?? []
        let user = ChatMessage(role: .user, content: message)
        let context = engine.contextLength
        let room = min(options.maxTokens, context / 4)
        let (history, start) = state.withLock { ($0.history, $0.windowStart) }
        var windowStart = start
        var messages = system + history[windowStart...] + [user]
        while windowStart + 2 <= history.count,
              try model.tokenize(.chat(messages)).count + room > context {
            windowStart += 2
            messages = system + history[windowStart...] + [user]
        }
        if windowStart != start { state.withLock { $0.windowStart = windowStart } }
        // A reply that fills the context keeps the template's start and the instructions.
        let keep = system.isEmpty ? 0 : (try? model.tokenize(.chat(system)).count).map { max(0, $0 - 4) } ?? 0
        return GenerationRequest(prompt: .chat(messages), maxTokens: options.maxTokens, sampling: options.sampling,
                                 contextShiftKeep: keep, prefillChunk: engine.configuration.prefillChunk,
                                 reusesCache: options.reusesCache, pacer: engine.makePacer(), outputFormat: options.outputFormat)
    }

    static func engineError(_ error: Error) -> EngineError {
        if let error = error as? EngineError { return error }
        if let error = error as? LanguageModelError {
            return EngineError(error.kind == .cancelled ? .cancelled : .generation, error.message)
        }
        return EngineError(.generation, "\(error)")
    }
}

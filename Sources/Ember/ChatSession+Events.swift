import EmberCore
import EmberLM
import EmberScheduler
import Synchronization

/// What one chat turn reports, for callers that want more than its text (the C ABI, progress
/// displays, statistics): `promptProcessed`, then `token`s with `paced` events between them, then
/// `finished`. A cancelled or failed turn ends the stream with an `EngineError` instead.
public enum ChatEvent: Sendable, Equatable {
    /// The conversation is in the KV cache: `tokens` prompt tokens were evaluated (those not reused
    /// from the cache) in `milliseconds`.
    case promptProcessed(tokens: Int, milliseconds: Double)
    /// One generated token and the text it completes (empty while a UTF-8 sequence is incomplete;
    /// id -1 carries text held back until the end).
    case token(id: Int32, text: String)
    /// Pacing holds the turn for `seconds` before its next step, for `reason` (a gap between
    /// tokens, a thermal pause, background work deferred). Sent when the wait begins, from the
    /// generating thread: it may arrive just before the token generated right before it.
    case paced(seconds: Double, reason: IdleReason)
    /// The reply is complete and joined the history.
    case finished(reason: StopReason, statistics: GenerationStatistics)
}

/// How a turn is scheduled: an interactive reply someone waits for, or background work (a summary,
/// an index) that pacing may defer until the phone is cool or charging, within its deadline.
public struct TurnOptions: Sendable, Equatable {
    public var requestClass: RequestClass
    /// Seconds from now by which background work must be done (nil: no deadline).
    public var deadlineSeconds: Double?

    public init(requestClass: RequestClass = .interactive, deadlineSeconds: Double? = nil) {
        self.requestClass = requestClass
        self.deadlineSeconds = deadlineSeconds
    }
}

/// A turn in flight: its events, and a way to cancel it that keeps the stream flowing until the
/// turn has really ended (the stream then throws `EngineError(.cancelled)`), so the chat is free
/// again by the time the stream ends.
public struct ChatTurn: Sendable {
    public let events: AsyncThrowingStream<ChatEvent, Error>
    let task: Task<Void, Never>

    /// Asks the turn to stop: prompt processing stops within one chunk, generation before the next token.
    public func cancel() { task.cancel() }
}

extension ChatSession {
    /// The reply to `message` as events; the exchange joins the history when the reply ends, and a
    /// cancelled turn leaves no trace. Cancel by cancelling the consuming task or dropping the
    /// stream: prompt processing stops within one chunk. `streamResponse(to:)` is this stream's text.
    public func events(to message: String, turn: TurnOptions = TurnOptions()) -> AsyncThrowingStream<ChatEvent, Error> {
        do {
            return try startTurn(to: message, turn: turn).events
        } catch {
            return AsyncThrowingStream { $0.finish(throwing: error) }
        }
    }

    /// Starts the reply to `message`, as `events(to:turn:)` does, with a handle to cancel it; throws
    /// at once when the chat is busy or the message cannot be rendered.
    public func startTurn(to message: String, turn: TurnOptions = TurnOptions()) throws(EngineError) -> ChatTurn {
        guard markBusy() else {
            throw EngineError(.busy, "this chat is still answering the previous message; wait for it or cancel it")
        }
        var request: GenerationRequest
        do {
            request = try makeRequest(for: message)
        } catch {
            end(nil)
            throw Self.turnError(error)
        }
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ChatEvent.self)
        if engine.configuration.pacesTokens {
            let pacer = engine.runtime.makePacer(requestClass: turn.requestClass, deadlineSeconds: turn.deadlineSeconds)
            request.pacer = ReportingPacer(base: pacer, runtime: engine.runtime) { continuation.yield($0) }
        }
        let task = Task { [self, request] in
            var reply = ""
            var finish: (StopReason, GenerationStatistics)?
            do {
                for try await event in engine.generator.generate(request) {
                    switch event {
                    case .promptProcessed(let tokens, let milliseconds):
                        continuation.yield(.promptProcessed(tokens: tokens, milliseconds: milliseconds))
                    case .token(let id, let text):
                        reply += text
                        continuation.yield(.token(id: id, text: text))
                    case .finished(let reason, let statistics):
                        finish = (reason, statistics)
                    }
                }
            } catch {
                end(nil)
                continuation.finish(throwing: Self.turnError(error))
                return
            }
            guard let (reason, statistics) = finish, reason != .cancelled else {
                end(nil)
                continuation.finish(throwing: EngineError(.cancelled, "the reply was cancelled"))
                return
            }
            end((message, reply, statistics))
            continuation.yield(.finished(reason: reason, statistics: statistics))
            continuation.finish()
        }
        continuation.onTermination = { termination in
            if case .cancelled = termination { task.cancel() }
        }
        return ChatTurn(events: stream, task: task)
    }

    /// `engineError`, keeping a full context apart (the caller can shorten the message).
    static func turnError(_ error: Error) -> EngineError {
        if let error = error as? LanguageModelError, error.kind == .contextFull {
            return EngineError(.contextFull, error.message)
        }
        return engineError(error)
    }
}

/// The engine's pacer for one turn, reporting each wait it asks for (with the reason the policy
/// recorded) as a `paced` event. Called on the generator's thread.
struct ReportingPacer: GenerationPacer {
    let base: TurnPacer
    let runtime: EngineRuntime
    let report: @Sendable (ChatEvent) -> Void

    func decide(_ progress: GenerationProgress) -> PacingDecision {
        let before = runtime.summary.idleSeconds
        let decision = base.decide(progress)
        if case .wait(let seconds) = decision {
            // The reason whose idle time the policy just grew (turns run one at a time per engine).
            let after = runtime.summary.idleSeconds
            let reason = after.max { ($0.value - (before[$0.key] ?? 0)) < ($1.value - (before[$1.key] ?? 0)) }?.key ?? .pacing
            report(.paced(seconds: seconds, reason: reason))
        }
        return decision
    }

    func record(_ progress: GenerationProgress, threads: Int, tokens: Int, seconds: Double) {
        base.record(progress, threads: threads, tokens: tokens, seconds: seconds)
    }
}

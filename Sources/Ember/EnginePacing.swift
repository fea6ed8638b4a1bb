import EmberCore
import EmberLM
import EmberScheduler
import Foundation
import Synchronization

/// What the engine's pacing has done so far (for an app's diagnostics and for tests).
public struct PacingSummary: Sendable, Equatable {
    /// Prompt chunks and tokens run under the policy.
    public var steps = 0
    /// Threads of the last step.
    public var lastStepThreads = 0
    /// Seconds left idle, by why (pacing gaps, thermal pauses).
    public var idleSeconds: [IdleReason: Double] = [:]
    /// Memory warnings received.
    public var memoryWarnings = 0
}

/// The platform state, the scheduler's adaptive policy and the hint stream of one engine, shared by
/// its turns. Any thread may update the state; the generator's thread asks the policy.
final class EngineRuntime: Sendable {
    private struct State {
        var platform = PlatformState.nominal
        var policy = AdaptivePolicy()
        var lastHint: PerformanceHint?
        var summary = PacingSummary()
        var nextRequest = 0
    }

    private let state = Mutex(State())
    let hints: AsyncStream<PerformanceHint>
    private let hintContinuation: AsyncStream<PerformanceHint>.Continuation
    let threadCount: Int
    let prefillChunk: Int
    private let start = MonotonicClock.nanoseconds()

    init(threadCount: Int, prefillChunk: Int) {
        self.threadCount = threadCount
        self.prefillChunk = prefillChunk
        (hints, hintContinuation) = AsyncStream.makeStream(of: PerformanceHint.self, bufferingPolicy: .bufferingNewest(256))
    }

    deinit { hintContinuation.finish() }

    var platform: PlatformState {
        get { state.withLock { $0.platform } }
        set { state.withLock { $0.platform = newValue } }
    }

    var summary: PacingSummary { state.withLock { $0.summary } }

    func noteMemoryWarning() { state.withLock { $0.summary.memoryWarnings += 1 } }

    /// Seconds since the engine started (the policy's clock).
    var now: Double { Double(MonotonicClock.nanoseconds() - start) / 1e9 }

    /// A pacer for one turn: interactive, or background work that must finish `deadlineSeconds` from now.
    func makePacer(requestClass: RequestClass = .interactive, deadlineSeconds: Double? = nil) -> TurnPacer {
        let id = state.withLock { state in
            state.nextRequest += 1
            return state.nextRequest
        }
        let arrival = now
        return TurnPacer(runtime: self, id: id, arrival: arrival, requestClass: requestClass,
                         deadline: deadlineSeconds.map { arrival + $0 })
    }

    /// The policy's decision for request `id` at `progress`, as the generator takes it.
    func decide(id: Int, arrival: Double, requestClass: RequestClass = .interactive, deadline: Double? = nil,
                _ progress: GenerationProgress) -> PacingDecision {
        let time = now
        let (decision, hint): (PacingDecision, PerformanceHint?) = state.withLock { state in
            let platform = state.platform
            let snapshot = RequestSnapshot(id: id, requestClass: requestClass, priority: requestClass == .interactive ? 10 : 0,
                                           arrival: arrival, deadline: deadline,
                                           promptTokens: progress.promptTokens, prefilledTokens: progress.prefilledTokens,
                                           generatedTokens: progress.generatedTokens, maxTokens: progress.maxTokens)
            var context = SchedulingContext(
                time: time, pending: [snapshot], thermalStatus: platform.thermalStatus, thermalHeadroom: platform.headroomNow,
                forecastHeadroom: platform.headroomAhead, batteryPercent: platform.batteryPercent ?? 100,
                isCharging: platform.isCharging, isPowerSaveMode: platform.isLowPowerMode, maximumThreads: threadCount,
                availableCores: threadCount, prefillChunkTokens: prefillChunk)
            context.isScreenOn = platform.isForeground
            switch state.policy.decide(context) {
            case .run(_, let threads, let hint, let chunk):
                return (.run(threads: threads, chunk: chunk), changed(hint, &state))
            case .decodeBatch(_, let threads, let hint):
                return (.run(threads: threads, chunk: nil), changed(hint, &state))
            case .idle(let until, let reason):
                guard reason != .noWork, until.isFinite else { return (.run(threads: nil, chunk: nil), nil) }
                let seconds = min(max(0, until - time), 1)
                state.summary.idleSeconds[reason, default: 0] += seconds
                return (.wait(seconds: seconds), nil)
            }
        }
        if let hint { hintContinuation.yield(hint) }
        return decision
    }

    /// The hint when it differs from the last one published, else nil.
    private func changed(_ hint: PerformanceHint, _ state: inout State) -> PerformanceHint? {
        if state.lastHint == hint { return nil }
        state.lastHint = hint
        return hint
    }

    func record(id: Int, _ progress: GenerationProgress, threads: Int, tokens: Int, seconds: Double) {
        state.withLock { state in
            state.policy.record(StepOutcome(id: id, kind: progress.step == .prefill ? .prefill : .decode,
                                            threads: threads, tokens: tokens, seconds: seconds))
            state.summary.steps += 1
            state.summary.lastStepThreads = threads
        }
    }
}

/// Paces one turn with the engine's policy: the generator asks it before every step.
struct TurnPacer: GenerationPacer {
    let runtime: EngineRuntime
    let id: Int
    let arrival: Double
    var requestClass = RequestClass.interactive
    /// When a background turn must be done (engine seconds), if ever.
    var deadline: Double?

    func decide(_ progress: GenerationProgress) -> PacingDecision {
        runtime.decide(id: id, arrival: arrival, requestClass: requestClass, deadline: deadline, progress)
    }

    func record(_ progress: GenerationProgress, threads: Int, tokens: Int, seconds: Double) {
        runtime.record(id: id, progress, threads: threads, tokens: tokens, seconds: seconds)
    }
}

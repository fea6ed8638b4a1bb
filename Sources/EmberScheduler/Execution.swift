import EmberCore
import EmberLM

/// The model work of scheduled requests, one step at a time: the real language model
/// (`ModelEngine`) or a model that only counts (the simulator's cost model).
///
/// The executor calls `begin` before a request's first step, `prefill` for each prompt chunk,
/// `next` for each token (the first one right after the last prompt chunk, from its logits), and
/// `end` once the request is over, however it ended.
public protocol ExecutionEngine {
    /// What the engine needs to start a request (a prompt and sampling, or counts).
    associatedtype Request

    /// Prepares request `id`; returns how many prompt tokens it has.
    mutating func begin(_ id: Int, _ request: Request) throws -> Int
    /// Processes the next `tokens` prompt tokens of `id` on `threads` threads.
    mutating func prefill(_ id: Int, tokens: Int, threads: Int) throws
    /// The next token of `id`, or nil once its reply has ended (an end-of-generation token).
    mutating func next(_ id: Int, threads: Int) throws -> GeneratedToken?
    /// The next token of each of `ids` (all past their prompts), decoded in one pass over the weights.
    mutating func next(batch ids: [Int], threads: Int) throws -> [GeneratedToken?]
    /// Whether `id` has no room for another token.
    func isContextFull(_ id: Int) -> Bool
    /// Releases what `id` holds (its KV cache); returns text held back until the end (an
    /// incomplete character), usually empty. Called for unstarted requests too.
    mutating func end(_ id: Int) -> String
    /// A memory warning: drops what can be rebuilt (caches kept for reuse); returns the bytes released.
    mutating func memoryPressure() -> Int
}

extension ExecutionEngine {
    public mutating func next(batch ids: [Int], threads: Int) throws -> [GeneratedToken?] {
        var tokens: [GeneratedToken?] = []
        for id in ids { tokens.append(try next(id, threads: threads)) }
        return tokens
    }

    public func isContextFull(_ id: Int) -> Bool { false }

    public mutating func memoryPressure() -> Int { 0 }
}

/// The work of one step, as a platform charges it: prompt tokens from a position, or one token
/// of each sequence at its position.
public enum StepWork: Sendable, Equatable {
    case prefill(tokens: Int, position: Int)
    case decode(positions: [Int])
}

/// Where the executor runs: what time it is, what the thermal and power sources report, and how
/// work and idle time pass. On the wall clock a step takes the time it takes and idle waits for
/// the wake time or a new arrival; on a simulated phone each step's cost is charged to the device
/// model and idle advances the virtual clock.
public protocol ExecutionPlatform: ThermalSource, PowerSource {
    /// Seconds on the platform's clock.
    var now: Double { get }
    /// Whether the screen is on.
    var isScreenOn: Bool { get }
    /// Threads a runtime uses by default (the big cores).
    var maximumThreads: Int { get }
    /// Every core of the device.
    var availableCores: Int { get }
    /// Accounts for a step of `work` on `threads` with `hint` whose engine part began at
    /// `startedAt` and is done; returns the seconds the step took (measured on the wall clock,
    /// charged to the device model on a simulated phone), or nil when the platform's time ran out
    /// before the step finished (a simulation's end): the step then counts for nothing.
    mutating func charge(_ work: StepWork, threads: Int, hint: PerformanceHint, startedAt: Double) -> Double?
    /// The seconds an idle decision until `until` lasts at most (before a new arrival cuts it short).
    func idleSeconds(until: Double) -> Double
    /// Leaves the CPU idle for up to `seconds`.
    mutating func idle(seconds: Double, reason: IdleReason)
    /// Forecast headroom without the app's work (`SchedulingContext.environmentHeadroom`), when
    /// the platform can tell; nil (the default) on a real phone.
    var environmentHeadroom: Double? { get }
}

extension ExecutionPlatform {
    public var environmentHeadroom: Double? { nil }
}

/// What the executor reports while it carries out decisions, in order.
public enum ExecutionEvent: Sendable, Equatable {
    /// Request `id` started: its prompt has `promptTokens` tokens.
    case began(id: Int, promptTokens: Int, time: Double)
    /// One prompt chunk of `id` was processed.
    case prefilled(id: Int, tokens: Int, time: Double)
    /// The whole prompt of `id` was processed, `seconds` after it began.
    case promptProcessed(id: Int, tokens: Int, seconds: Double)
    case token(id: Int, token: GeneratedToken, time: Double)
    /// The executor held `id` (the most urgent request) back for `seconds`.
    case paced(id: Int, reason: IdleReason, seconds: Double)
    /// Request `id` is over after `generatedTokens` tokens; `tail` is text the engine held back
    /// until the end.
    case finished(id: Int, reason: StopReason, generatedTokens: Int, tail: String, time: Double)
}

/// An engine error in a step: the requests of the step are over (their resources released),
/// and `underlying` says why.
public struct ExecutionFailure: Error, CustomStringConvertible {
    /// The requests of the failed step (a batch fails together).
    public var requestIDs: [Int]
    public var underlying: any Error

    public var description: String {
        "requests \(requestIDs.map(String.init).joined(separator: ", ")) failed: \(underlying)"
    }
}

/// Carries out `SchedulingDecision`s: the one runtime of the app's `TokenScheduler` (wall clock,
/// real model) and the simulator (virtual clock, simulated phone, cost model or real tokens).
///
/// It keeps the requests in flight and their progress, asks the policy for each step with the
/// platform's state, has the engine do the work, has the platform charge its time, reports each
/// step's cost back to the policy, and reports what happened as `ExecutionEvent`s.
public struct RequestExecutor<Engine: ExecutionEngine, Platform: ExecutionPlatform> {
    public var engine: Engine
    public var platform: Platform
    /// Prompt tokens one prefill step processes at most.
    public var prefillChunkTokens: Int
    /// Most sequences decoded in one step.
    public var maximumDecodeBatch: Int
    /// Most requests started at once (each holds a KV cache); later ones wait unseen by the policy.
    public var maximumStarted: Int

    private struct Tracked {
        var snapshot: RequestSnapshot
        let request: Engine.Request
        var started: Double?
    }

    private var tracked: [Int: Tracked] = [:]
    /// Pending request ids in arrival order.
    private var order: [Int] = []

    public init(engine: Engine, platform: Platform, prefillChunkTokens: Int = 128, maximumDecodeBatch: Int = 1,
                maximumStarted: Int = .max) {
        self.engine = engine
        self.platform = platform
        self.prefillChunkTokens = max(1, prefillChunkTokens)
        self.maximumDecodeBatch = maximumDecodeBatch
        self.maximumStarted = max(1, maximumStarted)
    }

    /// Whether no request is pending.
    public var isEmpty: Bool { order.isEmpty }

    /// Ids of the pending requests, in arrival order.
    public var pendingIDs: [Int] { order }

    /// Queues a request. `snapshot` carries its id, class, priority, arrival, deadline, maximum
    /// tokens and an estimate of its prompt tokens (until the engine counts them).
    public mutating func add(_ snapshot: RequestSnapshot, request: Engine.Request) {
        precondition(tracked[snapshot.id] == nil, "request \(snapshot.id) is already queued")
        tracked[snapshot.id] = Tracked(snapshot: snapshot, request: request)
        order.append(snapshot.id)
    }

    /// Ends request `id` with `reason` (cancelled, memory pressure) if it is pending.
    public mutating func end(_ id: Int, reason: StopReason, events: (ExecutionEvent) -> Void) {
        guard tracked[id] != nil else { return }
        finish(id, reason: reason, events: events)
    }

    /// Answers a memory warning: every level drops the engine's caches kept for reuse; `critical`
    /// also ends background requests (`memoryPressure`) and frees theirs. Returns the bytes released.
    public mutating func relieveMemoryPressure(_ level: MemoryPressure, events: (ExecutionEvent) -> Void) -> Int {
        guard level != .none else { return 0 }
        if level == .critical {
            for id in order where tracked[id]?.snapshot.requestClass == .background {
                finish(id, reason: .memoryPressure, events: events)
            }
        }
        return engine.memoryPressure()
    }

    /// The requests the policy sees: those started, and the earliest others up to `maximumStarted`.
    private var visible: [RequestSnapshot] {
        var room = maximumStarted - order.lazy.filter { self.tracked[$0]!.started != nil }.count
        var snapshots: [RequestSnapshot] = []
        snapshots.reserveCapacity(order.count)
        for id in order {
            let entry = tracked[id]!
            if entry.started == nil {
                guard room > 0 else { continue }
                room -= 1
            }
            snapshots.append(entry.snapshot)
        }
        return snapshots
    }

    /// Asks `policy` for the next step and carries it out.
    ///
    /// - Throws: `ExecutionFailure` when the engine fails; the step's requests are then over.
    public mutating func step(policy: inout some SchedulingPolicy,
                              events: (ExecutionEvent) -> Void) throws(ExecutionFailure) {
        let pending = visible
        var context = SchedulingContext(time: platform.now, pending: pending, thermal: platform, power: platform,
                                        maximumThreads: platform.maximumThreads, availableCores: platform.availableCores,
                                        prefillChunkTokens: prefillChunkTokens)
        context.isScreenOn = platform.isScreenOn
        context.maximumDecodeBatch = maximumDecodeBatch
        context.environmentHeadroom = platform.environmentHeadroom
        switch policy.decide(context) {
        case .idle(let until, let reason):
            let seconds = platform.idleSeconds(until: until)
            if reason != .noWork, let urgent = mostUrgent(pending) {
                events(.paced(id: urgent.id, reason: reason, seconds: max(0, seconds)))
            }
            platform.idle(seconds: seconds, reason: reason)
        case .run(let id, let threads, let hint, let chunk):
            guard tracked[id] != nil else { return }
            do {
                try run(id, threads: threads, hint: hint, chunk: chunk, policy: &policy, events: events)
            } catch {
                throw fail([id], error)
            }
        case .decodeBatch(let ids, let threads, let hint):
            let members = ids.filter { tracked[$0] != nil }
            guard !members.isEmpty else { return }
            if let unready = members.first(where: { !isPrefilled($0) }) {
                // A policy error: that prompt comes first, on its own.
                do {
                    try run(unready, threads: threads, hint: hint, chunk: nil, policy: &policy, events: events)
                } catch {
                    throw fail([unready], error)
                }
                return
            }
            do {
                try decode(members, threads: threads, hint: hint, policy: &policy, events: events)
            } catch {
                throw fail(members, error)
            }
        }
    }

    private func isPrefilled(_ id: Int) -> Bool {
        guard let entry = tracked[id], entry.started != nil else { return false }
        return entry.snapshot.isPrefilled
    }

    /// Ends `ids` after an engine error (releasing what the engine holds for them).
    private mutating func fail(_ ids: [Int], _ error: any Error) -> ExecutionFailure {
        for id in ids where tracked[id] != nil {
            tracked[id] = nil
            order.removeAll { $0 == id }
            _ = engine.end(id)
        }
        return ExecutionFailure(requestIDs: ids, underlying: error)
    }

    /// One prompt chunk, or one token, of `id`.
    private mutating func run(_ id: Int, threads: Int, hint: PerformanceHint, chunk: Int?,
                              policy: inout some SchedulingPolicy, events: (ExecutionEvent) -> Void) throws {
        if tracked[id]!.started == nil {
            let time = platform.now
            tracked[id]!.started = time
            let count = try engine.begin(id, tracked[id]!.request)
            tracked[id]!.snapshot.promptTokens = count
            events(.began(id: id, promptTokens: count, time: time))
        }
        let snapshot = tracked[id]!.snapshot
        if !snapshot.isPrefilled {
            let count = min(max(1, chunk ?? prefillChunkTokens), prefillChunkTokens, snapshot.promptTokens - snapshot.prefilledTokens)
            let started = platform.now
            try engine.prefill(id, tokens: count, threads: threads)
            guard let seconds = platform.charge(.prefill(tokens: count, position: snapshot.prefilledTokens), threads: threads,
                                                hint: hint, startedAt: started) else { return }
            policy.record(StepOutcome(id: id, kind: .prefill, threads: threads, tokens: count, seconds: seconds))
            tracked[id]!.snapshot.prefilledTokens += count
            let time = platform.now
            events(.prefilled(id: id, tokens: count, time: time))
            if tracked[id]!.snapshot.isPrefilled {
                events(.promptProcessed(id: id, tokens: snapshot.promptTokens, seconds: time - tracked[id]!.started!))
                // The last prompt chunk's logits give the first token.
                let first = try engine.next(id, threads: threads)
                emit(id, first, time: time, events: events)
            }
            return
        }
        let position = snapshot.promptTokens + snapshot.generatedTokens
        let started = platform.now
        let token = try engine.next(id, threads: threads)
        guard let seconds = platform.charge(.decode(positions: [position]), threads: threads, hint: hint, startedAt: started) else { return }
        policy.record(StepOutcome(id: id, kind: .decode, threads: threads, tokens: 1, seconds: seconds))
        emit(id, token, time: platform.now, events: events)
    }

    /// One token of each of `ids` (all past their prompts) in one pass over the weights.
    private mutating func decode(_ ids: [Int], threads: Int, hint: PerformanceHint,
                                 policy: inout some SchedulingPolicy, events: (ExecutionEvent) -> Void) throws {
        let positions = ids.map { id in tracked[id]!.snapshot.promptTokens + tracked[id]!.snapshot.generatedTokens }
        let started = platform.now
        let tokens = try engine.next(batch: ids, threads: threads)
        guard let seconds = platform.charge(.decode(positions: positions), threads: threads, hint: hint, startedAt: started) else { return }
        policy.record(StepOutcome(id: ids[0], kind: .decode, threads: threads, tokens: ids.count, seconds: seconds))
        let time = platform.now
        for (index, id) in ids.enumerated() { emit(id, tokens[index], time: time, events: events) }
    }

    /// Reports `token` of `id`, or ends it: at the end of its reply, its maximum tokens, or a full context.
    private mutating func emit(_ id: Int, _ token: GeneratedToken?, time: Double, events: (ExecutionEvent) -> Void) {
        guard let token else {
            finish(id, reason: .endOfGeneration, time: time, events: events)
            return
        }
        tracked[id]!.snapshot.generatedTokens += 1
        events(.token(id: id, token: token, time: time))
        if tracked[id]!.snapshot.generatedTokens >= tracked[id]!.snapshot.maxTokens {
            finish(id, reason: .maxTokens, time: time, events: events)
        } else if engine.isContextFull(id) {
            finish(id, reason: .contextFull, time: time, events: events)
        }
    }

    private mutating func finish(_ id: Int, reason: StopReason, time: Double? = nil, events: (ExecutionEvent) -> Void) {
        let generated = tracked.removeValue(forKey: id)?.snapshot.generatedTokens ?? 0
        order.removeAll { $0 == id }
        let tail = engine.end(id)
        events(.finished(id: id, reason: reason, generatedTokens: generated, tail: tail, time: time ?? platform.now))
    }
}

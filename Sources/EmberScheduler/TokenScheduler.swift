import EmberCore
import EmberLM
import EmberTokenizers
import Foundation

/// A generation submitted to the scheduler.
public struct ScheduledRequest: Sendable {
    public var prompt: Prompt
    public var maxTokens: Int
    public var sampling: SamplingParameters
    public var requestClass: RequestClass
    public var priority: Int
    /// Seconds from submission by which it must finish (background work).
    public var deadlineSeconds: Double?
    /// Keep generating through end-of-generation tokens (measurements, tests).
    public var ignoreEndOfGeneration: Bool

    public init(prompt: Prompt, maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                requestClass: RequestClass = .interactive, priority: Int? = nil, deadlineSeconds: Double? = nil,
                ignoreEndOfGeneration: Bool = false) {
        self.ignoreEndOfGeneration = ignoreEndOfGeneration
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.requestClass = requestClass
        self.priority = priority ?? (requestClass == .interactive ? 10 : 0)
        self.deadlineSeconds = deadlineSeconds
    }
}

/// What a scheduled generation reports, in order: prompt processed, tokens (with the pacing
/// decisions that spaced them), finished.
public enum ScheduledEvent: Sendable, Equatable {
    case promptProcessed(tokens: Int, milliseconds: Double)
    case token(id: Int32, text: String)
    /// The scheduler held this request back for `seconds` (pacing, thermal or battery deferral).
    case paced(reason: IdleReason, seconds: Double)
    case finished(reason: StopReason, generatedTokens: Int)
}

/// The one owner of a model: it takes many requests and runs them token by token on a dedicated
/// thread, in the order and at the pace a `SchedulingPolicy` picks from the platform's thermal
/// and power state.
///
/// Each started request holds its own KV cache (at most `maximumSessions` at once; the rest wait
/// in the queue). `@unchecked Sendable`: all mutable state is touched only with `condition` locked,
/// or only on the worker thread (sessions, samplers).
public final class TokenScheduler: @unchecked Sendable {
    public let model: LanguageModel
    private let condition = NSCondition()
    private var policy: any SchedulingPolicy
    private let thermal: any ThermalSource & Sendable
    private let power: any PowerSource & Sendable
    private let clock: @Sendable () -> Double
    private let threadCount: Int
    private let contextLength: Int
    private let maximumSessions: Int
    private var entries: [Int: Entry] = [:]
    private var nextID = 0
    private var stopped = false
    private var freeSessions: [InferenceSession] = []
    /// A memory warning not yet handled by the worker.
    private var pressure = MemoryPressure.none
    private var released = 0
    /// Bytes released by memory warnings so far (KV caches and scratch).
    public var releasedBytes: Int {
        condition.lock()
        defer { condition.unlock() }
        return released
    }

    private final class Entry {
        let id: Int
        let request: ScheduledRequest
        let arrival: Double
        let continuation: AsyncThrowingStream<ScheduledEvent, Error>.Continuation
        var cancelled = false
        // Worker-thread state.
        var tokens: [Int32]?
        var session: InferenceSession?
        var sampler: Sampler
        var detokenizer: StreamingDetokenizer?
        var prefilled = 0
        var generated = 0
        var nextToken: Int32 = 0
        var promptStart = 0.0

        init(id: Int, request: ScheduledRequest, arrival: Double, continuation: AsyncThrowingStream<ScheduledEvent, Error>.Continuation) {
            self.id = id
            self.request = request
            self.arrival = arrival
            self.continuation = continuation
            sampler = Sampler(parameters: request.sampling)
        }
    }

    /// - Parameters:
    ///   - clock: seconds on a monotonic clock (injected so tests can script it).
    public init(model: LanguageModel, policy: any SchedulingPolicy, thermal: any ThermalSource & Sendable,
                power: any PowerSource & Sendable, threadCount: Int, contextLength: Int = 2048, maximumSessions: Int = 2,
                clock: @escaping @Sendable () -> Double = { Double(MonotonicClock.nanoseconds()) / 1e9 }) {
        self.model = model
        self.policy = policy
        self.thermal = thermal
        self.power = power
        self.threadCount = max(1, threadCount)
        self.contextLength = min(contextLength, model.configuration.trainedContextLength)
        self.maximumSessions = max(1, maximumSessions)
        self.clock = clock
        let thread = Thread { [weak self] in self?.workerLoop() }
        thread.name = "ember.scheduler"
        thread.stackSize = 8 << 20
        thread.start()
    }

    deinit { stop() }

    /// Stops the worker; pending requests finish with `cancelled`.
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Answers a platform memory warning (Android `onTrimMemory`, iOS `didReceiveMemoryWarning`):
    /// every level drops the KV caches kept for reuse; `critical` also stops background
    /// generations in flight (they finish with `memoryPressure`) and frees their caches, while
    /// interactive ones continue. Returns at once: the scheduler's thread releases before its next
    /// step (a step in flight finishes first); `releasedBytes` counts what was freed.
    public func handleMemoryPressure(_ level: MemoryPressure) {
        condition.lock()
        pressure = max(pressure, level)
        condition.broadcast()
        condition.unlock()
    }

    /// Queues `request`; its events arrive on the stream. Dropping the stream cancels it.
    public func submit(_ request: ScheduledRequest) -> AsyncThrowingStream<ScheduledEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: ScheduledEvent.self)
        condition.lock()
        let id = nextID
        nextID += 1
        entries[id] = Entry(id: id, request: request, arrival: clock(), continuation: continuation)
        condition.broadcast()
        condition.unlock()
        continuation.onTermination = { [weak self] termination in
            guard case .cancelled = termination, let self else { return }
            self.condition.lock()
            self.entries[id]?.cancelled = true
            self.condition.broadcast()
            self.condition.unlock()
        }
        return stream
    }

    // MARK: The worker

    private func workerLoop() {
        while true {
            condition.lock()
            while entries.isEmpty && !stopped { condition.wait() }
            if stopped {
                let all = entries.values
                entries.removeAll()
                condition.unlock()
                for entry in all { entry.continuation.finish() }
                return
            }
            for entry in entries.values where entry.cancelled { finish(entry, reason: .cancelled, locked: true) }
            let level = pressure
            pressure = .none
            if level != .none {
                var freed = freeSessions.reduce(0) { $0 + $1.cache.byteCount + $1.scratchByteCount }
                freeSessions.removeAll()
                if level == .critical {
                    for entry in entries.values where entry.request.requestClass == .background {
                        if let session = entry.session { freed += session.cache.byteCount + session.scratchByteCount }
                        entry.session = nil
                        finish(entry, reason: .memoryPressure, locked: true)
                    }
                    freeSessions.removeAll()
                }
                released += freed
            }
            let started = entries.values.filter { $0.session != nil }
            let startable = entries.values.filter { $0.session == nil }.sorted { $0.id < $1.id }
                .prefix(max(0, maximumSessions - started.count))
            let visible = started + startable
            condition.unlock()
            guard !visible.isEmpty else { continue }

            let now = clock()
            let snapshots = visible.map { entry in
                RequestSnapshot(id: entry.id, requestClass: entry.request.requestClass, priority: entry.request.priority,
                                arrival: entry.arrival, deadline: entry.request.deadlineSeconds.map { entry.arrival + $0 },
                                promptTokens: entry.tokens?.count ?? 64, prefilledTokens: entry.prefilled,
                                generatedTokens: entry.generated, maxTokens: entry.request.maxTokens)
            }
            var context = SchedulingContext(time: now, pending: snapshots, thermal: thermal, power: power,
                                            maximumThreads: threadCount, availableCores: threadCount, prefillChunkTokens: 128)
            context.maximumDecodeBatch = maximumSessions
            switch policy.decide(context) {
            case .idle(let until, let reason):
                let seconds = min(until, now + 1) - now
                if reason != .noWork, let urgent = mostUrgent(snapshots), let entry = visible.first(where: { $0.id == urgent.id }) {
                    entry.continuation.yield(.paced(reason: reason, seconds: max(0, seconds)))
                }
                condition.lock()
                if seconds > 0 { _ = condition.wait(until: Date(timeIntervalSinceNow: seconds)) }
                condition.unlock()
            case .run(let id, let threads, _, let chunk):
                guard let entry = visible.first(where: { $0.id == id }) else { continue }
                do {
                    try step(entry, threads: threads, chunk: chunk ?? 128)
                } catch {
                    fail([entry], error)
                }
            case .decodeBatch(let ids, let threads, _):
                let batch = ids.compactMap { id in visible.first { $0.id == id } }
                guard !batch.isEmpty else { continue }
                do {
                    try decodeTogether(batch, threads: threads)
                } catch {
                    fail(batch, error)
                }
            }
        }
    }

    /// One prompt chunk or one token of `entry`, on the worker thread.
    private func step(_ entry: Entry, threads: Int, chunk: Int) throws {
        let start = clock()
        if entry.tokens == nil {
            let tokens = try model.tokenize(entry.request.prompt)
            guard !tokens.isEmpty, tokens.count + 1 < contextLength else {
                throw LanguageModelError(.contextFull, "the prompt has \(tokens.count) tokens but the context holds \(contextLength)")
            }
            entry.tokens = tokens
            entry.session = freeSessions.popLast() ?? InferenceSession(model: model.transformer, contextLength: contextLength, threadCount: threadCount)
            entry.session!.reset()
            entry.detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer)
            for token in tokens { entry.sampler.accept(token) }
            entry.promptStart = start
        }
        let session = entry.session!
        session.pool.activeThreadCount = threads
        let tokens = entry.tokens!
        if entry.prefilled < tokens.count {
            let firstToken = entry.prefilled
            let end = min(tokens.count, entry.prefilled + max(1, chunk))
            let last = end == tokens.count
            try session.evaluate(Array(tokens[entry.prefilled..<end]), logits: last ? .last : .none) { _, logits in
                entry.nextToken = entry.sampler.sample(logits)
            }
            entry.prefilled = end
            policy.record(StepOutcome(id: entry.id, kind: .prefill, threads: threads, tokens: end - firstToken, seconds: clock() - start))
            if last {
                entry.continuation.yield(.promptProcessed(tokens: tokens.count, milliseconds: (clock() - entry.promptStart) * 1000))
                emit(entry)
            }
            return
        }
        try session.evaluate([entry.nextToken], logits: .last) { _, logits in entry.nextToken = entry.sampler.sample(logits) }
        policy.record(StepOutcome(id: entry.id, kind: .decode, threads: threads, tokens: 1, seconds: clock() - start))
        emit(entry)
    }

    /// One token of each of `batch` (all past their prompts) in one pass over the weights, on the
    /// worker thread.
    private func decodeTogether(_ batch: [Entry], threads: Int) throws {
        if let unready = batch.first(where: { $0.session == nil || $0.prefilled < ($0.tokens?.count ?? .max) }) {
            // A policy error, not the caller's: its prompt comes first, on its own.
            try step(unready, threads: threads, chunk: 128)
            return
        }
        let start = clock()
        let sessions = batch.map { $0.session! }
        sessions[0].pool.activeThreadCount = threads
        try InferenceSession.decode(batch.map(\.nextToken), sessions: sessions) { index, logits in
            batch[index].nextToken = batch[index].sampler.sample(logits)
        }
        policy.record(StepOutcome(id: batch[0].id, kind: .decode, threads: threads, tokens: batch.count, seconds: clock() - start))
        for entry in batch { emit(entry) }
    }

    private func fail(_ batch: [Entry], _ error: Error) {
        condition.lock()
        for entry in batch { entries[entry.id] = nil }
        condition.unlock()
        for entry in batch {
            release(entry)
            entry.continuation.finish(throwing: error)
        }
    }

    /// Emits the pending token of `entry`, or finishes it.
    private func emit(_ entry: Entry) {
        let token = entry.nextToken
        if !entry.request.ignoreEndOfGeneration, model.tokenizer.endOfGenerationIDs.contains(token) {
            finish(entry, reason: .endOfGeneration, locked: false)
            return
        }
        entry.generated += 1
        entry.continuation.yield(.token(id: token, text: entry.detokenizer!.append(token)))
        entry.sampler.accept(token)
        if entry.generated >= entry.request.maxTokens {
            finish(entry, reason: .maxTokens, locked: false)
        } else if entry.session!.position >= contextLength - 1 {
            finish(entry, reason: .contextFull, locked: false)
        }
    }

    private func finish(_ entry: Entry, reason: StopReason, locked: Bool) {
        if !locked { condition.lock() }
        entries[entry.id] = nil
        if !locked { condition.unlock() }
        if let tail = entry.detokenizer?.finish(), !tail.isEmpty { entry.continuation.yield(.token(id: -1, text: tail)) }
        release(entry)
        entry.continuation.yield(.finished(reason: reason, generatedTokens: entry.generated))
        entry.continuation.finish()
    }

    private func release(_ entry: Entry) {
        if let session = entry.session {
            freeSessions.append(session)
            entry.session = nil
        }
    }
}

/// A platform memory warning, by severity.
public enum MemoryPressure: Int, Sendable, Comparable, CaseIterable {
    case none = 0
    /// Android `TRIM_MEMORY_UI_HIDDEN`/`BACKGROUND`, iOS app in background: drop reusable caches.
    case moderate = 1
    /// Android `TRIM_MEMORY_RUNNING_CRITICAL`, iOS memory warning: keep only interactive work.
    case critical = 2

    public static func < (left: MemoryPressure, right: MemoryPressure) -> Bool { left.rawValue < right.rawValue }
}

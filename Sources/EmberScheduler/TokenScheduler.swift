import EmberCore
import EmberLM
import EmberTokenizers
import Foundation
import Logging

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

/// What a platform may also report besides thermal and power state: whether the screen is on
/// and how many cores the device has. A thermal or power source given to `TokenScheduler` that
/// conforms to it is read before each step.
public protocol DeviceStateSource {
    /// Android `PowerManager.isInteractive()`; iOS: app in the foreground.
    var isScreenOn: Bool { get }
    /// Every core of the device (Android `Runtime.availableProcessors()`), or nil when unknown.
    var availableCores: Int? { get }
    /// Forecast headroom the environment alone would cause (without the app's work), when the
    /// source knows it; nil (the default) lets the policy estimate it from idle observations.
    var environmentHeadroom: Double? { get }
}

extension DeviceStateSource {
    public var environmentHeadroom: Double? { nil }
}

/// The wall clock as an `ExecutionPlatform`: a step takes the time it takes; idle time waits on
/// the scheduler's condition until the wake time or a new arrival (at most a second, so a changed
/// platform state is read again soon).
struct WallClockPlatform: ExecutionPlatform {
    let thermal: any ThermalSource & Sendable
    let power: any PowerSource & Sendable
    let clock: @Sendable () -> Double
    let condition: NSCondition
    /// Whether something arrived that the worker must handle (read with `condition` locked).
    let hasNews: () -> Bool
    let maximumThreads: Int

    var now: Double { clock() }
    var thermalStatus: ThermalStatus { thermal.thermalStatus }
    func thermalHeadroom(forecastSeconds: Double) -> Double { thermal.thermalHeadroom(forecastSeconds: forecastSeconds) }
    var batteryPercent: Double { power.batteryPercent }
    var isCharging: Bool { power.isCharging }
    var isPowerSaveMode: Bool { power.isPowerSaveMode }
    var isScreenOn: Bool { deviceState?.isScreenOn ?? true }
    var availableCores: Int { deviceState?.availableCores.map { max($0, maximumThreads) } ?? maximumThreads }
    var environmentHeadroom: Double? { deviceState?.environmentHeadroom }
    private var deviceState: (any DeviceStateSource)? { (thermal as? any DeviceStateSource) ?? (power as? any DeviceStateSource) }

    func charge(_ work: StepWork, threads: Int, hint: PerformanceHint, startedAt: Double) -> Double? {
        clock() - startedAt
    }

    func idleSeconds(until: Double) -> Double {
        let now = clock()
        return min(until, now + 1) - now
    }

    func idle(seconds: Double, reason: IdleReason) {
        guard seconds > 0 else { return }
        let deadline = Date(timeIntervalSinceNow: seconds)
        condition.lock()
        while !hasNews() && condition.wait(until: deadline) {}
        condition.unlock()
    }
}

/// The one owner of a model: it takes many requests and runs them token by token on a dedicated
/// thread, in the order and at the pace a `SchedulingPolicy` picks from the platform's thermal
/// and power state.
///
/// The worker is a `RequestExecutor` on the wall clock with a `ModelEngine` — the same executor
/// the simulator runs on its virtual clock. Each started request holds its own KV cache (at most
/// `maximumSessions` at once; the rest wait in the queue). `@unchecked Sendable`: all mutable
/// state is touched only with `condition` locked, or only on the worker thread (the executor).
public final class TokenScheduler: @unchecked Sendable {
    public let model: LanguageModel
    private let logger: Logger
    private let condition = NSCondition()
    private var policy: any SchedulingPolicy
    private let clock: @Sendable () -> Double
    private var executor: RequestExecutor<ModelEngine, WallClockPlatform>!
    private var streams: [Int: AsyncThrowingStream<ScheduledEvent, Error>.Continuation] = [:]
    /// Submitted, not yet handed to the executor.
    private var arrivals: [(snapshot: RequestSnapshot, request: ScheduledRequest)] = []
    private var cancelled: Set<Int> = []
    private var nextID = 0
    private var stopped = false
    /// Set by the worker once it has let go of the executor (the sessions and the model).
    private var finished = false
    private var worker: Thread?
    /// A memory warning not yet handled by the worker.
    private var pressure = MemoryPressure.none
    private var released = 0
    /// Bytes released by memory warnings so far (KV caches and scratch).
    public var releasedBytes: Int {
        condition.lock()
        defer { condition.unlock() }
        return released
    }

    /// A scheduler with a session pool of its own: `maximumSessions` KV caches of `contextLength`
    /// positions sharing `threadCount` threads.
    ///
    /// - Parameters:
    ///   - clock: seconds on a monotonic clock (injected so tests can script it).
    public convenience init(model: LanguageModel, policy: any SchedulingPolicy, thermal: any ThermalSource & Sendable,
                            power: any PowerSource & Sendable, threadCount: Int, contextLength: Int = 2048, maximumSessions: Int = 2,
                            clock: @escaping @Sendable () -> Double = { Double(MonotonicClock.nanoseconds()) / 1e9 }) {
        let pool = SessionPool(model: model, contextLength: min(contextLength, model.configuration.trainedContextLength),
                               threadCount: max(1, threadCount), capacity: max(1, maximumSessions))
        self.init(pool: pool, policy: policy, thermal: thermal, power: power, clock: clock)
    }

    /// A scheduler whose requests take their sequences from `pool` (shared with an engine's chats):
    /// at most `pool.capacity` requests (2 without one) start at once, decoded together.
    public init(pool: SessionPool, policy: any SchedulingPolicy, thermal: any ThermalSource & Sendable,
                power: any PowerSource & Sendable,
                clock: @escaping @Sendable () -> Double = { Double(MonotonicClock.nanoseconds()) / 1e9 },
                logger: Logger = SessionPool.silentLogger) {
        self.model = pool.model
        self.logger = logger
        self.policy = policy
        self.clock = clock
        let sessions = pool.capacity ?? 2
        let platform = WallClockPlatform(thermal: thermal, power: power, clock: clock, condition: condition,
                                         hasNews: { [unowned self] in self.hasNews }, maximumThreads: pool.threadCount)
        executor = RequestExecutor(engine: ModelEngine(pool: pool), platform: platform, prefillChunkTokens: 128,
                                   maximumDecodeBatch: sessions, maximumStarted: sessions)
        let thread = Thread { [weak self] in self?.workerLoop() }
        thread.name = "ember.scheduler"
        thread.stackSize = 8 << 20
        worker = thread
        thread.start()
    }

    deinit { stop() }

    /// Stops the worker; pending requests finish with `cancelled`.
    ///
    /// Waits until the worker has let go of the sessions and the model (a step in flight finishes
    /// first), so the memory is freed when the last handle goes rather than later on another
    /// thread; called on the worker itself (the last reference dropped by an event), it returns at once.
    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        if let worker, Thread.current !== worker {
            while !finished { condition.wait() }
        }
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
        let arrival = clock()
        let snapshot = RequestSnapshot(id: id, requestClass: request.requestClass, priority: request.priority, arrival: arrival,
                                       deadline: request.deadlineSeconds.map { arrival + $0 }, promptTokens: 64,
                                       maxTokens: request.maxTokens)
        arrivals.append((snapshot, request))
        streams[id] = continuation
        condition.broadcast()
        condition.unlock()
        continuation.onTermination = { [weak self] termination in
            guard case .cancelled = termination, let self else { return }
            self.condition.lock()
            self.cancelled.insert(id)
            self.condition.broadcast()
            self.condition.unlock()
        }
        return stream
    }

    /// Whether the worker has something new to handle; called with `condition` locked.
    private var hasNews: Bool { stopped || !arrivals.isEmpty || !cancelled.isEmpty || pressure != .none }

    // MARK: The worker

    private func workerLoop() {
        while true {
            condition.lock()
            while executor.isEmpty && !hasNews { condition.wait() }
            if stopped {
                let all = streams.values
                streams.removeAll()
                arrivals.removeAll()
                condition.unlock()
                for continuation in all { continuation.finish() }
                executor = nil
                condition.lock()
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            for arrival in arrivals { executor.add(arrival.snapshot, request: arrival.request) }
            arrivals.removeAll()
            let cancel = cancelled
            cancelled.removeAll()
            let level = pressure
            pressure = .none
            condition.unlock()

            for id in cancel.sorted() { executor.end(id, reason: .cancelled, events: deliver) }
            if level != .none {
                let freed = executor.relieveMemoryPressure(level, events: deliver)
                condition.lock()
                released += freed
                condition.unlock()
            }
            guard !executor.isEmpty else { continue }
            do {
                try executor.step(policy: &policy, events: deliver)
            } catch {
                logger.error("scheduler: a step failed", metadata: ["requests": "\(error.requestIDs)", "error": "\(error.underlying)"])
                for id in error.requestIDs { stream(id, remove: true)?.finish(throwing: error.underlying) }
            }
        }
    }

    /// The continuation of request `id`.
    private func stream(_ id: Int, remove: Bool = false) -> AsyncThrowingStream<ScheduledEvent, Error>.Continuation? {
        condition.lock()
        defer { condition.unlock() }
        return remove ? streams.removeValue(forKey: id) : streams[id]
    }

    /// Turns the executor's events into the request's stream events.
    private func deliver(_ event: ExecutionEvent) {
        switch event {
        case .began(let id, let promptTokens, _):
            logger.debug("scheduler: request began", metadata: ["request": "\(id)", "prompt_tokens": "\(promptTokens)"])
        case .prefilled:
            break
        case .promptProcessed(let id, let tokens, let seconds):
            stream(id)?.yield(.promptProcessed(tokens: tokens, milliseconds: seconds * 1000))
        case .token(let id, let token, _):
            stream(id)?.yield(.token(id: token.id, text: token.text))
        case .paced(let id, let reason, let seconds):
            stream(id)?.yield(.paced(reason: reason, seconds: seconds))
        case .finished(let id, let reason, let generatedTokens, let tail, _):
            logger.debug("scheduler: request finished",
                         metadata: ["request": "\(id)", "reason": "\(reason.rawValue)", "tokens": "\(generatedTokens)"])
            guard let continuation = stream(id, remove: true) else { return }
            if !tail.isEmpty { continuation.yield(.token(id: -1, text: tail)) }
            continuation.yield(.finished(reason: reason, generatedTokens: generatedTokens))
            continuation.finish()
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

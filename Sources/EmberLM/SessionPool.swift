import EmberCore
import EmberKernels
import Foundation
import Logging
import Synchronization

/// The sequences of one model that may generate at once, within a memory plan: each lent
/// `GenerationSequence` holds its own KV cache and scratch, and all of them share one thread pool,
/// which runs one step at a time (a chat turn and a background summary on two threads take turns
/// step by step; neither makes threads of its own).
///
/// A returned sequence keeps its cache, so the next owner that asks for it (a chat's next turn)
/// evaluates only what is new; a memory warning drops the idle ones (`releaseIdle`).
///
/// `@unchecked Sendable`: `idle` and `lentCount` are touched only with `condition` locked; the
/// thread pool only inside `SharedThreadPool.step`, one caller at a time; a lent sequence belongs
/// to its borrower alone.
public final class SessionPool: @unchecked Sendable {
    public let model: LanguageModel
    /// Positions of each sequence's KV cache.
    public let contextLength: Int
    /// Prompt tokens each session evaluates per batch at most.
    public let batchSize: Int
    public let keyValueType: KeyValueType
    /// Most sequences lent at once (nil: as many as asked for, for tools and tests).
    public let capacity: Int?
    let threads: SharedThreadPool
    private let condition = NSCondition()
    private var idle: [GenerationSequence] = []
    private var lentCount = 0

    /// A pool of sequences of `contextLength` positions on `threadCount` shared threads, at most
    /// `capacity` of them at once. With `threadPriority`, the threads take the priority of the
    /// work each step runs (interactive or background); without, they are left alone.
    public init(model: LanguageModel, contextLength: Int, batchSize: Int = 512, keyValueType: KeyValueType = .f16,
                threadCount: Int, capacity: Int? = nil, threadPriority: (any ThreadPrioritySetting)? = nil,
                logger: Logger = SessionPool.silentLogger) {
        self.model = model
        self.contextLength = max(1, contextLength)
        self.batchSize = batchSize
        self.keyValueType = keyValueType
        self.capacity = capacity.map { max(1, $0) }
        self.logger = logger
        threads = SharedThreadPool(ThreadPool(threadCount: max(1, threadCount)), priority: threadPriority)
    }

    /// A pool as `plan` says: its context, KV type and step size, and `plan.sessions` sequences.
    public convenience init(model: LanguageModel, plan: MemoryPlan, threadCount: Int,
                            threadPriority: (any ThreadPrioritySetting)? = nil, logger: Logger = SessionPool.silentLogger) {
        self.init(model: model, contextLength: max(1, min(plan.context, model.configuration.trainedContextLength)),
                  batchSize: plan.batchSize, keyValueType: plan.keyValueType, threadCount: threadCount,
                  capacity: plan.sessions, threadPriority: threadPriority, logger: logger)
    }

    /// A logger that discards everything (the default: a library never picks the handler).
    public static let silentLogger = Logger(label: "ember", factory: { _ in SwiftLogNoOpLogHandler() })
    let logger: Logger

    /// Threads of the one pool the sequences share.
    public var threadCount: Int { threads.pool.threadCount }

    /// Sequences lent now.
    public var lent: Int { condition.withLock { lentCount } }

    /// Lends a sequence: `preferred` if it is idle (its cache intact), else the idle one that was
    /// returned last, else a new one while under `capacity`. When all are lent, waits for one to
    /// come back as long as `keepWaiting` (asked about every 20 ms) says so; without it, or when
    /// it says stop, throws.
    public func take(preferring preferred: GenerationSequence? = nil,
                     keepWaiting: (() -> Bool)? = nil) throws(LanguageModelError) -> GenerationSequence {
        while true {
            condition.lock()
            if let index = idle.firstIndex(where: { $0 === preferred }) ?? (idle.isEmpty ? nil : idle.count - 1) {
                lentCount += 1
                let sequence = idle.remove(at: index)
                condition.unlock()
                sequence.priority = .interactive
                threads.lend(sequence.priority)
                sequence.isLent = true
                return sequence
            }
            if capacity.map({ lentCount < $0 }) ?? true {
                lentCount += 1
                let lent = lentCount
                condition.unlock()
                logger.debug("session pool: new session", metadata: ["lent": "\(lent)", "capacity": "\(capacity.map(String.init) ?? "any")",
                                                                      "context": "\(contextLength)", "kv": "\(keyValueType.rawValue)"])
                let session = InferenceSession(model: model.transformer, contextLength: contextLength, batchSize: batchSize,
                                               threadCount: threads.pool.threadCount, keyValueType: keyValueType,
                                               pool: threads.pool)
                let sequence = GenerationSequence(model: model, session: session, pool: threads)
                threads.lend(sequence.priority)
                sequence.isLent = true
                return sequence
            }
            condition.unlock()
            guard let keepWaiting, keepWaiting() else {
                throw LanguageModelError(.memoryBudget,
                    "all \(capacity ?? 0) sessions the memory plan holds are generating; plan for more concurrent requests or wait for one to end")
            }
            condition.lock()
            if lentCount >= (capacity ?? .max), idle.isEmpty { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.02)) }
            condition.unlock()
        }
    }

    /// Takes `sequence` back (its cache kept for whoever asks for it next).
    public func giveBack(_ sequence: GenerationSequence) {
        sequence.isLent = false
        threads.giveBack(sequence.priority)
        condition.withLock {
            lentCount -= 1
            idle.append(sequence)
            condition.signal()
        }
    }

    /// Drops the idle sequences (their KV caches and scratch; the shared threads stay); returns
    /// the bytes released.
    @discardableResult
    public func releaseIdle() -> Int {
        let released = condition.withLock {
            defer { idle.removeAll() }
            return idle
        }
        let bytes = released.reduce(0) { $0 + $1.session.cache.byteCount + $1.session.scratchByteCount }
        if !released.isEmpty {
            logger.info("session pool: released idle sessions", metadata: ["sessions": "\(released.count)", "bytes": "\(bytes)"])
        }
        return bytes
    }
}

/// One thread pool lent to one step at a time: the sequences of a `SessionPool` may be driven from
/// different threads (a chat's generator, the scheduler), and `ThreadPool.parallelFor` takes one
/// caller at a time.
///
/// A background step runs at interactive priority while an interactive sequence is lent (a chat
/// turn in flight): the turn may be waiting for the pool that step holds, and a step slowed by a
/// lower priority would slow the turn too (priority inheritance, at the pool's grain).
///
/// `@unchecked Sendable`: `pool` and `current` are used only with `lock` held.
final class SharedThreadPool: @unchecked Sendable {
    let pool: ThreadPool
    let prioritySetting: (any ThreadPrioritySetting)?
    /// The priority the threads were given last (nil: never set).
    private var current: WorkPriority?
    private let lock = NSLock()
    /// Interactive sequences lent now.
    private let interactiveLent = Atomic<Int>(0)

    func lend(_ priority: WorkPriority) {
        if priority == .interactive { interactiveLent.add(1, ordering: .relaxed) }
    }

    func giveBack(_ priority: WorkPriority) {
        if priority == .interactive { interactiveLent.subtract(1, ordering: .relaxed) }
    }

    init(_ pool: ThreadPool, priority: (any ThreadPrioritySetting)?) {
        self.pool = pool
        prioritySetting = priority
    }

    /// Runs `body` with `threads` of the pool taking part (nil: all of them), the threads at the
    /// priority of `priority`'s work.
    func step<Result>(threads: Int?, priority asked: WorkPriority, _ body: () throws -> Result) rethrows -> Result {
        lock.lock()
        defer { lock.unlock() }
        let priority = interactiveLent.load(ordering: .relaxed) > 0 ? WorkPriority.interactive : asked
        if let prioritySetting, current != priority {
            // One index per thread: each thread of the pool (the caller as thread 0) sets its own.
            pool.activeThreadCount = pool.threadCount
            pool.parallelFor(pool.threadCount) { _, _ in prioritySetting.apply(priority) }
            current = priority
        }
        pool.activeThreadCount = threads ?? pool.threadCount
        return try body()
    }
}

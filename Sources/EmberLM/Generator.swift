import EmberCore
import EmberKernels
import EmberTokenizers
import Foundation
import Synchronization

/// A request for one generation.
public struct GenerationRequest: Sendable {
    public var prompt: Prompt
    public var maxTokens: Int
    public var sampling: SamplingParameters
    /// Keep generating through end-of-generation tokens (for measurements and comparisons).
    public var ignoreEndOfGeneration: Bool
    /// When the context fills: keep this many tokens from the start, drop the oldest half of the
    /// rest, recompute the cache and continue (nil: stop with `contextFull`).
    public var contextShiftKeep: Int?
    /// Prompt tokens evaluated per step, with a cancellation check (and the pacer's say) between
    /// steps; nil evaluates the whole prompt in one call (batches of the generator's batch size).
    public var prefillChunk: Int?
    /// Start from the longest prefix the cache already holds (false: evaluate the whole prompt again).
    public var reusesCache: Bool
    /// Decides, before every prompt chunk and every token, how many threads run it and whether to
    /// wait first (nil: as fast as possible on every thread).
    public var pacer: (any GenerationPacer)?
    /// Stop rules, loop and echo detection on the reply's text (nil: none); a stop ends the
    /// generation with `StopReason.stopRule`.
    public var decodingGuard: DecodingGuard?
    /// The shape the output must have (nil: free text): a JSON Schema, a regular expression or a
    /// choice. Compiled before generation (an unsupported feature fails then); the generation
    /// ends as soon as the output is complete, and fails with `outputIncomplete` rather than
    /// deliver an incomplete one. (A `sampling.constraint` already compiled serves the same.)
    public var outputFormat: OutputFormat?

    public init(prompt: Prompt, maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                ignoreEndOfGeneration: Bool = false, contextShiftKeep: Int? = nil, prefillChunk: Int? = nil,
                reusesCache: Bool = true, pacer: (any GenerationPacer)? = nil, decodingGuard: DecodingGuard? = nil,
                outputFormat: OutputFormat? = nil) {
        self.outputFormat = outputFormat
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.ignoreEndOfGeneration = ignoreEndOfGeneration
        self.contextShiftKeep = contextShiftKeep
        self.prefillChunk = prefillChunk
        self.reusesCache = reusesCache
        self.pacer = pacer
        self.decodingGuard = decodingGuard
    }
}

/// Where a generation stands before its next step, as a `GenerationPacer` sees it.
public struct GenerationProgress: Sendable, Equatable {
    public enum Step: String, Sendable, Equatable { case prefill, decode }
    /// The step about to run.
    public var step: Step
    /// Prompt tokens this generation evaluates (those not reused from the cache).
    public var promptTokens: Int
    public var prefilledTokens: Int
    public var generatedTokens: Int
    public var maxTokens: Int

    public init(step: Step, promptTokens: Int, prefilledTokens: Int, generatedTokens: Int, maxTokens: Int) {
        self.step = step
        self.promptTokens = promptTokens
        self.prefilledTokens = prefilledTokens
        self.generatedTokens = generatedTokens
        self.maxTokens = maxTokens
    }
}

/// What a pacer wants before the next step.
public enum PacingDecision: Sendable, Equatable {
    /// Run the step on `threads` (nil: all), a prompt step on at most `chunk` tokens (nil: as asked).
    case run(threads: Int?, chunk: Int?)
    /// Wait `seconds` (interrupted by cancellation), then ask again.
    case wait(seconds: Double)
}

/// Paces a generation from outside the inference core (the facade wires the scheduler's policy
/// and the platform's thermal and power state into it). Called on the generator's thread.
public protocol GenerationPacer: Sendable {
    func decide(_ progress: GenerationProgress) -> PacingDecision
    /// What the step just run cost.
    func record(_ progress: GenerationProgress, threads: Int, tokens: Int, seconds: Double)
}

/// Why a generation stopped.
public enum StopReason: String, Sendable, Equatable, Codable {
    case endOfGeneration
    case maxTokens
    case contextFull
    case cancelled
    /// The platform ran short of memory and the scheduler stopped this (background) generation.
    case memoryPressure
    /// The request's `DecodingGuard` ended it (a stop rule, a loop or an echo).
    case stopRule
}

/// Figures of a finished generation.
public struct GenerationStatistics: Sendable, Equatable, Codable {
    public var promptTokens: Int
    /// Prompt tokens actually evaluated (the rest were reused from the cache).
    public var evaluatedPromptTokens: Int
    public var generatedTokens: Int
    public var timeToFirstTokenMilliseconds: Double
    public var prefillTokensPerSecond: Double
    public var decodeTokensPerSecond: Double
    public var peakResidentBytes: Int

    public init(promptTokens: Int, evaluatedPromptTokens: Int, generatedTokens: Int, timeToFirstTokenMilliseconds: Double,
                prefillTokensPerSecond: Double, decodeTokensPerSecond: Double, peakResidentBytes: Int) {
        self.promptTokens = promptTokens
        self.evaluatedPromptTokens = evaluatedPromptTokens
        self.generatedTokens = generatedTokens
        self.timeToFirstTokenMilliseconds = timeToFirstTokenMilliseconds
        self.prefillTokensPerSecond = prefillTokensPerSecond
        self.decodeTokensPerSecond = decodeTokensPerSecond
        self.peakResidentBytes = peakResidentBytes
    }
}

/// What a generation stream delivers, in order: `promptProcessed`, then `token`s, then `finished`.
public enum GenerationEvent: Sendable, Equatable {
    /// The prompt is in the cache; `tokens` were evaluated in `milliseconds`.
    case promptProcessed(tokens: Int, milliseconds: Double)
    /// One generated token and the text it completes (empty while a UTF-8 sequence is incomplete).
    case token(id: Int32, text: String)
    case finished(reason: StopReason, statistics: GenerationStatistics)
}

/// Runs generations one at a time on a dedicated thread (never Swift's shared cooperative pool)
/// and streams their events: a thin loop over a `GenerationSequence` lent by a `SessionPool`.
///
/// Between generations the sequence goes back to the pool with its cache, and the next generation
/// asks for it again, so a chat's next turn evaluates only its new tokens (unless a memory
/// warning or another borrower of the pool took it meanwhile).
///
/// `@unchecked Sendable`: `lastSequence` is touched only by jobs on `worker`, which runs them one
/// after another.
public final class Generator: @unchecked Sendable {
    public let model: LanguageModel
    /// Where the sequences come from (shared with a scheduler when an engine runs both).
    public let pool: SessionPool
    private let worker: WorkerThread
    /// The sequence of the last generation, asked for again to reuse its cache. Weak: once the
    /// pool releases it (a memory warning), its memory goes.
    private weak var lastSequence: GenerationSequence?

    /// A generator with a pool of its own: one sequence of `contextLength` positions on `threadCount` threads.
    public convenience init(model: LanguageModel, contextLength: Int, threadCount: Int, batchSize: Int = 512,
                            keyValueType: KeyValueType = .f16) {
        self.init(pool: SessionPool(model: model, contextLength: contextLength, batchSize: batchSize,
                                    keyValueType: keyValueType, threadCount: threadCount, capacity: 1))
    }

    /// A generator whose sequences come from `pool`.
    public init(pool: SessionPool) {
        model = pool.model
        self.pool = pool
        worker = WorkerThread(name: "ember.generator")
    }

    public var contextLength: Int { pool.contextLength }

    /// Forgets the sequence in the cache (after generations already submitted); the next prompt is
    /// evaluated from the start. For memory warnings: the idle sequences of the pool are released.
    public func forgetCache() {
        worker.submit { [self] in
            lastSequence = nil
            pool.releaseIdle()
        }
    }

    /// Starts a generation; cancel it by cancelling the consuming task or dropping the stream.
    public func generate(_ request: GenerationRequest) -> AsyncThrowingStream<GenerationEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: GenerationEvent.self)
        let cancelled = CancellationFlag()
        continuation.onTermination = { termination in
            if case .cancelled = termination { cancelled.cancel() }
        }
        worker.submit { [self] in
            do {
                try run(request, cancelled: cancelled) { continuation.yield($0) }
                continuation.finish()
            } catch {
                continuation.finish(throwing: error)
            }
        }
        return stream
    }

    /// The generation loop, on the worker thread.
    private func run(_ request: GenerationRequest, cancelled: CancellationFlag,
                     emit: (GenerationEvent) -> Void) throws {
        let start = MonotonicClock.nanoseconds()
        try request.sampling.validate()
        guard request.maxTokens >= 0 else {
            throw LanguageModelError(.invalidInput, "max tokens must be at least 0, not \(request.maxTokens)")
        }
        if let keep = request.contextShiftKeep, keep < 0 {
            throw LanguageModelError(.invalidInput, "a context shift keeps at least 0 tokens, not \(keep)")
        }
        var sampling = request.sampling
        if let format = request.outputFormat { sampling.constraint = try model.constraint(for: format) }
        if let constraint = sampling.constraint { try constraint.checkCompletes(within: request.maxTokens) }
        let promptTokens = try model.tokenize(request.prompt)
        guard !promptTokens.isEmpty else {
            throw LanguageModelError(.invalidInput, "the prompt is empty")
        }
        let capacity = pool.contextLength
        guard promptTokens.count < capacity else {
            // The prompt needs its own positions and one more for the first generated token.
            let trained = model.transformer.configuration.trainedContextLength
            if promptTokens.count >= trained {
                throw LanguageModelError(.contextFull,
                    "the prompt has \(promptTokens.count) tokens but the model reads at most \(trained) (its trained context); shorten the prompt")
            }
            throw LanguageModelError(.contextFull,
                "the prompt has \(promptTokens.count) tokens but the context holds \(capacity); use a --context of \(promptTokens.count + 1) to \(trained) (the model's trained context) or a shorter prompt")
        }
        guard let sequence = try takeSequence(cancelled: cancelled) else {
            emit(.finished(reason: .cancelled, statistics: GenerationStatistics(
                promptTokens: promptTokens.count, evaluatedPromptTokens: 0, generatedTokens: 0,
                timeToFirstTokenMilliseconds: 0, prefillTokensPerSecond: 0, decodeTokensPerSecond: 0,
                peakResidentBytes: ProcessMemory.peakResidentBytes())))
            return
        }
        lastSequence = sequence
        defer { pool.giveBack(sequence) }

        let remainder = sequence.begin(prompt: promptTokens, sampling: sampling,
                                       ignoreEndOfGeneration: request.ignoreEndOfGeneration, reusesCache: request.reusesCache,
                                       tokenBudget: sampling.constraint == nil ? nil : request.maxTokens)
        let allThreads = pool.threadCount
        var progress = GenerationProgress(step: .prefill, promptTokens: remainder, prefilledTokens: 0,
                                          generatedTokens: 0, maxTokens: request.maxTokens)
        var reason = StopReason.maxTokens
        // The prompt in steps of `prefillChunk` (one step when nil and unpaced), checking for
        // cancellation between them.
        while !sequence.isPromptProcessed {
            var chunk = request.prefillChunk ?? remainder
            var threads = allThreads
            if let pacer = request.pacer {
                guard let decision = pace(pacer, progress, cancelled: cancelled) else { break }
                threads = decision.threads ?? allThreads
                chunk = min(chunk, decision.chunk ?? chunk)
            }
            if cancelled.isCancelled { break }
            let first = sequence.prefilledTokens
            let stepStart = MonotonicClock.nanoseconds()
            try sequence.processPrompt(chunk, threads: threads)
            request.pacer?.record(progress, threads: threads, tokens: sequence.prefilledTokens - first,
                                  seconds: Double(MonotonicClock.nanoseconds() - stepStart) / 1e9)
            progress.prefilledTokens = sequence.prefilledTokens
        }
        let prefillMilliseconds = MonotonicClock.milliseconds(since: start)
        if !sequence.isPromptProcessed {
            reason = .cancelled
        } else {
            emit(.promptProcessed(tokens: remainder, milliseconds: prefillMilliseconds))
        }
        progress.step = .decode

        var decodingGuard = request.decodingGuard
        var generated = 0
        var firstTokenTime: UInt64 = 0
        var lastTokenTime: UInt64 = 0
        while reason != .cancelled, generated < request.maxTokens {
            if cancelled.isCancelled {
                reason = .cancelled
                break
            }
            // Every token after the first evaluates the one before it: room, pace, then the step.
            var threads = allThreads
            let evaluates = generated > 0
            if evaluates {
                if sequence.isFull {
                    guard let keep = request.contextShiftKeep else {
                        reason = .contextFull
                        break
                    }
                    try sequence.shiftContext(keep: keep)
                }
                if let pacer = request.pacer {
                    progress.generatedTokens = generated
                    guard let decision = pace(pacer, progress, cancelled: cancelled) else {
                        reason = .cancelled
                        break
                    }
                    threads = decision.threads ?? allThreads
                }
            }
            let stepStart = MonotonicClock.nanoseconds()
            let next = try sequence.next(threads: threads)
            if evaluates {
                request.pacer?.record(progress, threads: threads, tokens: 1,
                                      seconds: Double(MonotonicClock.nanoseconds() - stepStart) / 1e9)
                if cancelled.isCancelled {
                    reason = .cancelled
                    break
                }
            }
            guard let token = next else {
                reason = .endOfGeneration
                break
            }
            generated += 1
            lastTokenTime = MonotonicClock.nanoseconds()
            if generated == 1 { firstTokenTime = lastTokenTime }
            emit(.token(id: token.id, text: token.text))
            if decodingGuard?.append(token.text) == true {
                reason = .stopRule
                break
            }
        }
        let tail = sequence.finish()
        if !tail.isEmpty { emit(.token(id: -1, text: tail)) }
        if let constraint = sampling.constraint, reason != .cancelled, !sequence.isOutputAccepted {
            let missing = constraint.remainingBytes(sequence.constraintState)
            throw LanguageModelError(.outputIncomplete,
                "the output stopped (\(reason.rawValue)) after \(generated) tokens before \(constraint.grammar) was complete (at least \(missing) more bytes needed); raise the token limit or shorten what the format asks for")
        }

        let decodeSeconds = Double(lastTokenTime &- firstTokenTime) / 1e9
        let statistics = GenerationStatistics(
            promptTokens: promptTokens.count,
            evaluatedPromptTokens: progress.prefilledTokens,
            generatedTokens: generated,
            timeToFirstTokenMilliseconds: generated > 0 ? Double(firstTokenTime &- start) / 1e6 : prefillMilliseconds,
            prefillTokensPerSecond: prefillMilliseconds > 0 ? Double(progress.prefilledTokens) / (prefillMilliseconds / 1000) : 0,
            decodeTokensPerSecond: generated > 1 && decodeSeconds > 0 ? Double(generated - 1) / decodeSeconds : 0,
            peakResidentBytes: ProcessMemory.peakResidentBytes())
        emit(.finished(reason: reason, statistics: statistics))
    }

    /// A sequence from the pool (the last one if still idle), waiting while other borrowers hold
    /// them all; nil when cancelled meanwhile.
    private func takeSequence(cancelled: CancellationFlag) throws -> GenerationSequence? {
        let result = Result { () throws(LanguageModelError) in
            try pool.take(preferring: lastSequence, keepWaiting: { !cancelled.isCancelled })
        }
        if case .failure = result, cancelled.isCancelled { return nil }
        return try result.get()
    }

    /// Asks `pacer` until it says run, waiting as told in slices that notice cancellation; nil
    /// when cancelled meanwhile.
    private func pace(_ pacer: any GenerationPacer, _ progress: GenerationProgress,
                      cancelled: CancellationFlag) -> (threads: Int?, chunk: Int?)? {
        while true {
            if cancelled.isCancelled { return nil }
            switch pacer.decide(progress) {
            case .run(let threads, let chunk):
                return (threads, chunk)
            case .wait(let seconds):
                let until = MonotonicClock.nanoseconds() + UInt64(max(0, min(seconds, 3600)) * 1e9)
                while MonotonicClock.nanoseconds() < until {
                    if cancelled.isCancelled { return nil }
                    let left = Double(until - min(until, MonotonicClock.nanoseconds())) / 1e9
                    Thread.sleep(forTimeInterval: min(left, 0.02))
                }
            }
        }
    }
}

/// A flag set once from any thread and read by the generation loop.
final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func cancel() { value.store(true, ordering: .relaxed) }
    var isCancelled: Bool { value.load(ordering: .relaxed) }
}

/// A dedicated thread that runs submitted jobs one after another; it ends when released.
final class WorkerThread: Sendable {
    private let queue = JobQueue()

    init(name: String) {
        let queue = self.queue
        let thread = Thread {
            while let job = queue.next() { job() }
        }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    deinit { queue.close() }

    func submit(_ job: @escaping @Sendable () -> Void) { queue.append(job) }

    /// Jobs waiting for the worker.
    ///
    /// `@unchecked Sendable`: `jobs` and `closed` are only touched with `condition` locked.
    private final class JobQueue: @unchecked Sendable {
        private let condition = NSCondition()
        private var jobs: [@Sendable () -> Void] = []
        private var closed = false

        func append(_ job: @escaping @Sendable () -> Void) {
            condition.lock()
            jobs.append(job)
            condition.signal()
            condition.unlock()
        }

        func close() {
            condition.lock()
            closed = true
            condition.signal()
            condition.unlock()
        }

        /// The next job, waiting for one; nil once closed and drained.
        func next() -> (@Sendable () -> Void)? {
            condition.lock()
            defer { condition.unlock() }
            while jobs.isEmpty, !closed { condition.wait() }
            return jobs.isEmpty ? nil : jobs.removeFirst()
        }
    }
}

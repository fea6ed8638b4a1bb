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

    public init(prompt: Prompt, maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                ignoreEndOfGeneration: Bool = false, contextShiftKeep: Int? = nil, prefillChunk: Int? = nil,
                reusesCache: Bool = true, pacer: (any GenerationPacer)? = nil, decodingGuard: DecodingGuard? = nil) {
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
}

/// What a generation stream delivers, in order: `promptProcessed`, then `token`s, then `finished`.
public enum GenerationEvent: Sendable, Equatable {
    /// The prompt is in the cache; `tokens` were evaluated in `milliseconds`.
    case promptProcessed(tokens: Int, milliseconds: Double)
    /// One generated token and the text it completes (empty while a UTF-8 sequence is incomplete).
    case token(id: Int32, text: String)
    case finished(reason: StopReason, statistics: GenerationStatistics)
}

/// The one owner of a model's inference state: runs generations one at a time on a dedicated
/// thread (never Swift's shared cooperative pool) and streams their events.
///
/// `@unchecked Sendable`: the `InferenceSession` and the cached token list are touched only by
/// jobs on `worker`, which runs them one after another.
public final class Generator: @unchecked Sendable {
    public let model: LanguageModel
    private let session: InferenceSession
    private let worker: WorkerThread
    private var cachedTokens: [Int32] = []

    public init(model: LanguageModel, contextLength: Int, threadCount: Int, batchSize: Int = 512,
                keyValueType: KeyValueType = .f16) {
        self.model = model
        session = InferenceSession(model: model.transformer, contextLength: contextLength, batchSize: batchSize,
                                   threadCount: threadCount, keyValueType: keyValueType)
        worker = WorkerThread(name: "ember.generator")
    }

    public var contextLength: Int { session.cache.capacity }

    /// Forgets the sequence in the cache (after generations already submitted); the next prompt is
    /// evaluated from the start. For memory warnings: nothing is kept for reuse.
    public func forgetCache() {
        worker.submit { [self] in
            session.reset()
            cachedTokens = []
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
        let promptTokens = try model.tokenize(request.prompt)
        guard !promptTokens.isEmpty else {
            throw LanguageModelError(.invalidInput, "the prompt is empty")
        }
        let capacity = session.cache.capacity
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

        // Reuse the cached prefix the new prompt shares with the previous sequence.
        var shared = 0
        while request.reusesCache, shared < min(cachedTokens.count, promptTokens.count - 1),
              cachedTokens[shared] == promptTokens[shared] {
            shared += 1
        }
        session.cache.truncate(to: shared)
        cachedTokens = Array(promptTokens[..<shared])

        var sampler = Sampler(parameters: request.sampling)
        for token in promptTokens { sampler.accept(token) }

        let allThreads = session.pool.threadCount
        defer { session.pool.activeThreadCount = allThreads }
        var nextToken: Int32 = 0
        let remainder = Array(promptTokens[shared...])
        var progress = GenerationProgress(step: .prefill, promptTokens: remainder.count, prefilledTokens: 0,
                                          generatedTokens: 0, maxTokens: request.maxTokens)
        var reason = StopReason.maxTokens
        // The prompt in steps of `prefillChunk` (one step when nil and unpaced), checking for
        // cancellation between them.
        while progress.prefilledTokens < remainder.count {
            var chunk = request.prefillChunk ?? remainder.count
            var threads = allThreads
            if let pacer = request.pacer {
                guard let decision = pace(pacer, progress, cancelled: cancelled) else { break }
                threads = decision.threads ?? allThreads
                chunk = min(chunk, decision.chunk ?? chunk)
            }
            if cancelled.isCancelled { break }
            session.pool.activeThreadCount = threads
            let first = progress.prefilledTokens
            let end = min(remainder.count, first + max(1, chunk))
            let stepStart = MonotonicClock.nanoseconds()
            try session.evaluate(Array(remainder[first..<end]), logits: end == remainder.count ? .last : .none) { _, logits in
                nextToken = sampler.sample(logits)
            }
            cachedTokens += remainder[first..<end]
            request.pacer?.record(progress, threads: threads, tokens: end - first,
                                  seconds: Double(MonotonicClock.nanoseconds() - stepStart) / 1e9)
            progress.prefilledTokens = end
        }
        let prefillMilliseconds = MonotonicClock.milliseconds(since: start)
        if progress.prefilledTokens < remainder.count {
            reason = .cancelled
        } else {
            emit(.promptProcessed(tokens: remainder.count, milliseconds: prefillMilliseconds))
        }
        progress.step = .decode

        var detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer)
        var decodingGuard = request.decodingGuard
        let endOfGeneration = model.tokenizer.endOfGenerationIDs
        var generated = 0
        var firstTokenTime: UInt64 = 0
        var lastTokenTime: UInt64 = 0
        while reason != .cancelled, generated < request.maxTokens {
            if cancelled.isCancelled {
                reason = .cancelled
                break
            }
            let token = nextToken
            if !request.ignoreEndOfGeneration, endOfGeneration.contains(token) {
                reason = .endOfGeneration
                break
            }
            generated += 1
            lastTokenTime = MonotonicClock.nanoseconds()
            if generated == 1 { firstTokenTime = lastTokenTime }
            let piece = detokenizer.append(token)
            emit(.token(id: token, text: piece))
            sampler.accept(token)
            if decodingGuard?.append(piece) == true {
                reason = .stopRule
                break
            }
            if generated == request.maxTokens { break }
            if session.position >= session.cache.capacity {
                guard let keep = request.contextShiftKeep else {
                    reason = .contextFull
                    break
                }
                // Context shift: the first `keep` tokens, then the newer half of the rest.
                let kept = min(max(0, keep), cachedTokens.count - 1)
                let rest = cachedTokens.count - kept
                let retained = Array(cachedTokens[..<kept]) + Array(cachedTokens[(kept + rest / 2)...])
                session.reset()
                try session.evaluate(retained, logits: .none)
                cachedTokens = retained
            }
            var threads = allThreads
            if let pacer = request.pacer {
                progress.generatedTokens = generated
                guard let decision = pace(pacer, progress, cancelled: cancelled) else {
                    reason = .cancelled
                    break
                }
                threads = decision.threads ?? allThreads
                session.pool.activeThreadCount = threads
            }
            let stepStart = MonotonicClock.nanoseconds()
            try session.evaluate([token], logits: .last) { _, logits in
                nextToken = sampler.sample(logits)
            }
            cachedTokens.append(token)
            request.pacer?.record(progress, threads: threads, tokens: 1,
                                  seconds: Double(MonotonicClock.nanoseconds() - stepStart) / 1e9)
        }
        let tail = detokenizer.finish()
        if !tail.isEmpty { emit(.token(id: -1, text: tail)) }

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

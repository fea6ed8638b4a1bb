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

    public init(prompt: Prompt, maxTokens: Int = 256, sampling: SamplingParameters = SamplingParameters(),
                ignoreEndOfGeneration: Bool = false, contextShiftKeep: Int? = nil) {
        self.prompt = prompt
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.ignoreEndOfGeneration = ignoreEndOfGeneration
        self.contextShiftKeep = contextShiftKeep
    }
}

/// Why a generation stopped.
public enum StopReason: String, Sendable, Equatable, Codable {
    case endOfGeneration
    case maxTokens
    case contextFull
    case cancelled
    /// The platform ran short of memory and the scheduler stopped this (background) generation.
    case memoryPressure
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
        while shared < min(cachedTokens.count, promptTokens.count - 1), cachedTokens[shared] == promptTokens[shared] {
            shared += 1
        }
        session.cache.truncate(to: shared)
        cachedTokens = Array(promptTokens[..<shared])

        var sampler = Sampler(parameters: request.sampling)
        for token in promptTokens { sampler.accept(token) }

        var nextToken: Int32 = 0
        let remainder = Array(promptTokens[shared...])
        try session.evaluate(remainder, logits: .last) { _, logits in
            nextToken = sampler.sample(logits)
        }
        cachedTokens += remainder
        let prefillMilliseconds = MonotonicClock.milliseconds(since: start)
        emit(.promptProcessed(tokens: remainder.count, milliseconds: prefillMilliseconds))

        var detokenizer = StreamingDetokenizer(tokenizer: model.tokenizer)
        let endOfGeneration = model.tokenizer.endOfGenerationIDs
        var generated = 0
        var reason = StopReason.maxTokens
        var firstTokenTime: UInt64 = 0
        var lastTokenTime: UInt64 = 0
        while generated < request.maxTokens {
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
            emit(.token(id: token, text: detokenizer.append(token)))
            sampler.accept(token)
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
            try session.evaluate([token], logits: .last) { _, logits in
                nextToken = sampler.sample(logits)
            }
            cachedTokens.append(token)
        }
        let tail = detokenizer.finish()
        if !tail.isEmpty { emit(.token(id: -1, text: tail)) }

        let decodeSeconds = Double(lastTokenTime &- firstTokenTime) / 1e9
        let statistics = GenerationStatistics(
            promptTokens: promptTokens.count,
            evaluatedPromptTokens: remainder.count,
            generatedTokens: generated,
            timeToFirstTokenMilliseconds: generated > 0 ? Double(firstTokenTime &- start) / 1e6 : prefillMilliseconds,
            prefillTokensPerSecond: prefillMilliseconds > 0 ? Double(remainder.count) / (prefillMilliseconds / 1000) : 0,
            decodeTokensPerSecond: generated > 1 && decodeSeconds > 0 ? Double(generated - 1) / decodeSeconds : 0,
            peakResidentBytes: ProcessMemory.peakResidentBytes())
        emit(.finished(reason: reason, statistics: statistics))
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

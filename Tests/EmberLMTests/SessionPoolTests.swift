import EmberCore
import EmberGGUF
import EmberKernels
import EmberLM
import Foundation
import Synchronization
import Testing

/// `GenerationSequence` and `SessionPool`: the one loop body every driver uses, sessions lent
/// within a capacity, one shared thread pool, and the memory plan that counts them.
@Suite("Generation sequences and the session pool", .serialized)
struct SessionPoolTests {
    static let prompt: [Int32] = [1, 504, 3458, 282, 4649, 314, 253, 1345, 30, 378, 1345, 314]

    static func model() throws -> LanguageModel { try LanguageModel(path: TestSupport.modelPath("smollm2")) }

    /// Greedy tokens straight from an `InferenceSession`, written out as the loop always was: the
    /// prompt, then evaluate each token to get the next.
    static func referenceTokens(_ model: LanguageModel, prompt: [Int32], count: Int, threads: Int) throws -> [Int32] {
        let session = InferenceSession(model: model.transformer, contextLength: 256, threadCount: threads)
        var next: Int32 = 0
        var sampler = Sampler(parameters: .greedy)
        for token in prompt { sampler.accept(token) }
        try session.evaluate(prompt, logits: .last) { _, logits in next = sampler.sample(logits) }
        var tokens: [Int32] = []
        while tokens.count < count {
            tokens.append(next)
            sampler.accept(next)
            try session.evaluate([next], logits: .last) { _, logits in next = sampler.sample(logits) }
        }
        return tokens
    }

    @Test func sequenceGivesTheSessionLoopsTokens() throws {
        let model = try Self.model()
        let expected = try Self.referenceTokens(model, prompt: Self.prompt, count: 12, threads: 2)
        let pool = SessionPool(model: model, contextLength: 256, threadCount: 2, capacity: 1)
        let sequence = try pool.take()
        #expect(sequence.begin(prompt: Self.prompt, sampling: .greedy, ignoreEndOfGeneration: true, reusesCache: true) == Self.prompt.count)
        // Uneven chunks, as a paced prompt goes.
        try sequence.processPrompt(5)
        #expect(!sequence.isPromptProcessed)
        try sequence.processPrompt(100, threads: 1)
        #expect(sequence.isPromptProcessed)
        var tokens: [Int32] = []
        for _ in 0..<12 { tokens.append(try #require(try sequence.next()).id) }
        #expect(tokens == expected)
        #expect(sequence.cachedTokens == Self.prompt + expected.dropLast())
        pool.giveBack(sequence)
    }

    @Test func batchedSequencesGiveEachOnesTokens() throws {
        let model = try Self.model()
        let prompts: [[Int32]] = [Self.prompt, [1, 9906, 11, 856, 836, 374], Array(Self.prompt.prefix(4))]
        let expected = try prompts.map { try Self.referenceTokens(model, prompt: $0, count: 8, threads: 2) }
        let pool = SessionPool(model: model, contextLength: 256, threadCount: 2, capacity: 3)
        let sequences = try prompts.map { prompt in
            let sequence = try pool.take()
            sequence.begin(prompt: prompt, sampling: .greedy, ignoreEndOfGeneration: true, reusesCache: false)
            try sequence.processPrompt(prompt.count)
            return sequence
        }
        var tokens = [[Int32]](repeating: [], count: prompts.count)
        for _ in 0..<8 {
            for (index, token) in try GenerationSequence.next(batch: sequences).enumerated() {
                tokens[index].append(try #require(token).id)
            }
        }
        #expect(tokens == expected)
    }

    @Test func reusedCacheEvaluatesOnlyTheNewTokens() throws {
        let model = try Self.model()
        let pool = SessionPool(model: model, contextLength: 256, threadCount: 1, capacity: 1)
        let first = try pool.take()
        first.begin(prompt: Self.prompt, sampling: .greedy, ignoreEndOfGeneration: true, reusesCache: true)
        try first.processPrompt(Self.prompt.count)
        let reply = try (0..<3).map { _ in try #require(try first.next()).id }
        pool.giveBack(first)
        // The next turn: the whole conversation again, plus new tokens.
        let turn = Self.prompt + reply + [198, 504]
        let again = try pool.take(preferring: first)
        #expect(again === first)
        let evaluated = again.begin(prompt: turn, sampling: .greedy, ignoreEndOfGeneration: true, reusesCache: true)
        #expect(evaluated == turn.count - (Self.prompt.count + 2))  // the last reply token was never evaluated
        try again.processPrompt(evaluated)
        let reused = try #require(try again.next()).id
        #expect(reused == (try Self.referenceTokens(model, prompt: turn, count: 1, threads: 1))[0])
        pool.giveBack(again)
    }

    @Test func poolLendsWithinItsCapacity() throws {
        let model = try Self.model()
        let pool = SessionPool(model: model, contextLength: 64, batchSize: 16, threadCount: 2, capacity: 2)
        let first = try pool.take(), second = try pool.take()
        #expect(first !== second && pool.lent == 2)
        #expect(throws: LanguageModelError.self) { _ = try pool.take() }
        #expect(throws: LanguageModelError.self) { _ = try pool.take(keepWaiting: { false }) }
        // A borrower on another thread waits until one comes back.
        // Which sequence it got, set once `take` returns (never held while it waits).
        let taken = Mutex<ObjectIdentifier?>(nil)
        let waiter = Thread {
            if let sequence = try? pool.take(keepWaiting: { true }) {
                let identity = ObjectIdentifier(sequence)
                taken.withLock { $0 = identity }
            }
        }
        waiter.start()
        Thread.sleep(forTimeInterval: 0.1)
        #expect(taken.withLock { $0 } == nil)
        pool.giveBack(second)
        let deadline = Date(timeIntervalSinceNow: 5)
        while taken.withLock({ $0 }) == nil, Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        #expect(taken.withLock { $0 } == ObjectIdentifier(second))
        #expect(pool.lent == 2)
        pool.giveBack(first)
        pool.giveBack(second)
        // Idle sessions are released on a memory warning: their caches and scratch, not the shared pool.
        let perSession = first.session.cache.byteCount + first.session.scratchByteCount
        #expect(pool.releaseIdle() == 2 * perSession)
        #expect(pool.releaseIdle() == 0)
        #expect(first.session.scratchByteCount
                == InferenceSession(model: model.transformer, contextLength: 64, batchSize: 16, threadCount: 2).scratchByteCount
                   - InferenceSession.threadPoolByteCount(threadCount: 2))
    }

    /// The plan counts each session's KV cache and scratch, and the shared pool's workspaces once:
    /// what the pool's sessions actually allocate.
    @Test(arguments: [1, 2, 3])
    func planCountsEverySessionAndOnePool(sessions: Int) throws {
        let model = try Self.model()
        let file = try GGUFFile(path: TestSupport.modelPath("smollm2"))
        let one = try MemoryPlan.make(file: file, context: 512, batchSize: 64, threadCount: 2)
        let plan = try MemoryPlan.make(file: file, context: 512, batchSize: 64, threadCount: 2, sessions: sessions)
        let pool = SessionPool(model: model, plan: plan, threadCount: 2)
        let lent = try (0..<sessions).map { _ in try pool.take() }
        #expect(throws: LanguageModelError.self) { _ = try pool.take() }
        let allocatedCaches = lent.reduce(0) { $0 + $1.session.cache.byteCount }
        let allocatedScratch = lent.reduce(0) { $0 + $1.session.scratchByteCount } + InferenceSession.threadPoolByteCount(threadCount: 2)
        #expect(plan.sessions == sessions)
        #expect(plan.keyValueCacheBytes == allocatedCaches)
        #expect(plan.scratchBytes == allocatedScratch)
        #expect(plan.weightsBytes == one.weightsBytes && plan.overheadBytes == one.overheadBytes)
        #expect(plan.totalBytes == one.totalBytes + (sessions - 1) * (lent[0].session.cache.byteCount + lent[0].session.scratchByteCount))
        for sequence in lent { pool.giveBack(sequence) }
    }

    @Test func fittingTwoSessionsNamesThemWhenNothingFits() throws {
        let file = try GGUFFile(path: TestSupport.modelPath("smollm2"))
        let single = try MemoryPlan.fit(file: file, budgetBytes: 160 << 20, context: 2048, threadCount: 2, allowStreaming: false,
                                        keyValueTypes: [.f16, .q8_0, .q4_0])
        let double = try MemoryPlan.fit(file: file, budgetBytes: 160 << 20, context: 2048, threadCount: 2, allowStreaming: false,
                                        keyValueTypes: [.f16, .q8_0, .q4_0], sessions: 2)
        #expect(double.fits && double.sessions == 2 && double.totalBytes <= 160 << 20)
        #expect(double.context <= single.context)
        do {
            _ = try MemoryPlan.fit(file: file, budgetBytes: 100 << 20, context: 2048, threadCount: 2, allowStreaming: false,
                                   keyValueTypes: [.q4_0], minimumContext: 2048, sessions: 8)
            Issue.record("eight 2048-token sessions should not fit 100 MiB")
        } catch {
            #expect(error.kind == .memoryBudget && error.message.contains("8 sessions at once"), "\(error)")
        }
    }

    /// Records which thread was given which priority.
    final class RecordingPriority: ThreadPrioritySetting, @unchecked Sendable {
        let applied = Mutex<[(thread: ObjectIdentifier, priority: WorkPriority)]>([])
        func apply(_ priority: WorkPriority) {
            applied.withLock { $0.append((ObjectIdentifier(Thread.current), priority)) }
        }
    }

    @Test func threadsTakeThePriorityOfEachStepsWork() throws {
        let model = try Self.model()
        let recorder = RecordingPriority()
        let pool = SessionPool(model: model, contextLength: 128, threadCount: 3, capacity: 2, threadPriority: recorder)
        let summary = try pool.take()
        summary.priority = .background
        summary.begin(prompt: Self.prompt, sampling: .greedy, reusesCache: false)
        try summary.processPrompt(2)
        try summary.processPrompt(2)  // unchanged: the threads are not told again
        // While a chat turn holds a sequence, background steps run at its priority (it may be
        // waiting for them), and fall back once it is returned.
        let chat = try pool.take()
        chat.begin(prompt: Self.prompt, sampling: .greedy, reusesCache: false)
        try summary.processPrompt(2)
        try chat.processPrompt(Self.prompt.count)
        pool.giveBack(chat)
        try summary.processPrompt(2)
        let applied = recorder.applied.withLock { $0 }
        #expect(applied.map(\.priority) == [WorkPriority](repeating: .background, count: 3) + [WorkPriority](repeating: .interactive, count: 3)
                + [WorkPriority](repeating: .background, count: 3))
        // Each change reaches every thread of the pool once (the driving thread is thread 0).
        #expect(Set(applied.prefix(3).map(\.thread)).count == 3)
        #expect(applied.prefix(3).contains { $0.thread == ObjectIdentifier(Thread.current) })
        pool.giveBack(summary)
        // Without a setting nothing is touched (the simulator's case).
        let plain = SessionPool(model: model, contextLength: 128, threadCount: 2)
        let sequence = try plain.take()
        sequence.priority = .background
        sequence.begin(prompt: Self.prompt, sampling: .greedy, reusesCache: false)
        try sequence.processPrompt(Self.prompt.count)
        #expect(recorder.applied.withLock { $0.count } == 9)
    }

    @Test func systemPriorityUsesAndroidsNiceValues() {
        #expect(SystemThreadPriority.niceValue(.interactive) == 0)
        #expect(SystemThreadPriority.niceValue(.background) == 10)
    }
}

@_exported import EmberCore
@_exported import EmberLM
@_exported import EmberScheduler
import EmberGGUF
import Foundation
@_exported import Logging

/// The engine an app embeds: one model within a memory budget, one owner of its KV cache, chats
/// that reuse that cache turn after turn, paced by the platform's thermal and power state.
///
/// ```swift
/// let engine = try Engine(EngineConfiguration(model: .file(path: path), memoryBudgetBytes: 160 << 20))
/// let chat = engine.chat(instructions: "You are a helpful assistant.")
/// print(try await chat.respond(to: "Hello!"))
/// engine.update(PlatformState(thermalStatus: PlatformState.thermalStatus(iOSThermalState: 2)))
/// ```
///
/// Chat turns run on the engine's generator thread, one turn at a time (turns of several chat
/// sessions queue); background summaries run on its scheduler's thread. Both take their KV cache
/// from one `SessionPool` (`configuration.concurrentRequests` sessions, all counted in the plan)
/// and share its one thread pool, step by step. Every method may be called from any thread.
public final class Engine: Sendable {
    public let configuration: EngineConfiguration
    public let model: LanguageModel
    /// The memory plan the model was loaded with (context, KV type and steps may differ from the
    /// configuration when the budget asked for less).
    public let plan: MemoryPlan
    /// Positions of the KV cache.
    public let contextLength: Int
    /// The sessions (KV caches and scratch) of the plan and the one thread pool they share.
    public let sessions: SessionPool
    let generator: Generator
    let runtime: EngineRuntime
    /// Background work (summaries): the scheduler's executor on the wall clock, paced by the
    /// adaptive policy from the pushed platform state.
    let scheduler: TokenScheduler
    let logger: Logger

    /// The memory plan for `configuration` without loading the model: it fits (perhaps with a
    /// shorter context, quantized KV cache or smaller steps), or this throws one error that says
    /// what would fit. A container is decoded to be measured.
    public static func plan(_ configuration: EngineConfiguration) throws(EngineError) -> MemoryPlan {
        try ModelLoader.plan(ModelLoader.open(configuration), configuration)
    }

    /// Plans as `plan(_:)` does, then loads the model as planned; threads take the priority of the
    /// work they run (the operating system's), and nothing is logged.
    public convenience init(_ configuration: EngineConfiguration) throws(EngineError) {
        try self.init(configuration, threadPriority: SystemThreadPriority(), logger: SessionPool.silentLogger)
    }

    /// Plans as `plan(_:)` does, then loads the model as planned.
    /// - Parameters:
    ///   - threadPriority: how the shared threads take the priority of each step's work (chat turns
    ///     interactive, summaries background); nil leaves them alone.
    ///   - logger: where the engine, its session pool and its scheduler log (the app picks the handler).
    public init(_ configuration: EngineConfiguration, threadPriority: (any ThreadPrioritySetting)?,
                logger: Logger) throws(EngineError) {
        let opened = try ModelLoader.open(configuration)
        let plan = try ModelLoader.plan(opened, configuration)
        let model = try ModelLoader.load(opened, plan: plan, interleave: configuration.interleavesWeights)
        logger.info("engine: loaded within the plan", metadata: [
            "model": "\(opened.name)", "planned_bytes": "\(plan.totalBytes)",
            "budget_bytes": "\(plan.budgetBytes.map(String.init) ?? "none")", "sessions": "\(plan.sessions)",
            "context": "\(plan.context)", "kv": "\(plan.keyValueType.rawValue)", "load_ms": "\(Int(model.loadMilliseconds))"])
        self.logger = logger
        self.configuration = configuration
        self.model = model
        self.plan = plan
        contextLength = max(8, min(plan.context, model.configuration.trainedContextLength))
        let threads = configuration.resolvedThreadCount
        sessions = SessionPool(model: model, contextLength: contextLength, batchSize: plan.batchSize,
                               keyValueType: plan.keyValueType, threadCount: threads, capacity: plan.sessions,
                               threadPriority: threadPriority, logger: logger)
        generator = Generator(pool: sessions)
        let runtime = EngineRuntime(threadCount: threads, prefillChunk: configuration.prefillChunk)
        self.runtime = runtime
        let platform = PlatformStateSource(reading: { runtime.platform })
        scheduler = TokenScheduler(pool: sessions, policy: AdaptivePolicy(), thermal: platform, power: platform, logger: logger)
    }

    deinit { scheduler.stop() }

    /// A conversation with this model; `instructions` become its system message.
    public func chat(instructions: String? = nil, options: ChatOptions = ChatOptions()) -> ChatSession {
        ChatSession(engine: self, instructions: instructions, options: options)
    }

    /// The platform's latest thermal and power state; the next step is paced by it. Any thread.
    public func update(_ state: PlatformState) {
        runtime.platform = state
    }

    /// The state last passed to `update(_:)` (nominal until then).
    public var platformState: PlatformState { runtime.platform }

    /// The performance hints the policy picks, each time it changes (a boost for the first prompt,
    /// target durations for prompt chunks, none for paced tokens): pass them to Android's
    /// `PerformanceHintManager.Session` or map them to thread QoS on iOS. One consumer.
    public var hints: AsyncStream<PerformanceHint> { runtime.hints }

    /// What pacing has done so far.
    public var pacing: PacingSummary { runtime.summary }

    /// Answers a platform memory warning (Android `onTrimMemory`, iOS `didReceiveMemoryWarning`):
    /// every level forgets the conversation kept in the KV cache once the turn in flight ends (the
    /// next turn evaluates its history again). Replies are interactive, so even `critical` lets the
    /// turn in flight finish, as the scheduler does. The cache's memory stays allocated: it is part
    /// of the plan the budget admitted.
    public func memoryWarning(_ level: MemoryPressure) {
        guard level != .none else { return }
        logger.notice("engine: memory warning", metadata: ["level": "\(level)"])
        runtime.noteMemoryWarning()
        generator.forgetCache()
        scheduler.handleMemoryPressure(level)
    }

    /// Summarizes a note as background work: `NoteSummarizer`'s pipeline, its requests going
    /// through the engine's scheduler (background class, paced by the platform state pushed with
    /// `update`), their sessions from the engine's pool beside any chat. `critical` memory
    /// warnings stop it.
    public func summarize(title: String, text: String, deadlineSeconds: Double? = nil) async throws -> NoteSummarizer.Result {
        let summarizer = NoteSummarizer(model: model, scheduler: scheduler)
        do {
            return try await summarizer.summarize(title: title, text: text, deadlineSeconds: deadlineSeconds)
        } catch {
            throw ChatSession.engineError(error)
        }
    }

    /// A pacer for one turn, or nil when pacing is off.
    func makePacer() -> (any GenerationPacer)? {
        configuration.pacesTokens ? runtime.makePacer() : nil
    }
}

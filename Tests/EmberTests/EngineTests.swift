import Foundation
import Synchronization
import Testing
import Ember

/// The real SmolLM2 file for engine tests: `$EMBER_MODELS` or `~/.cache/ember/models`.
enum EngineModel {
    static var path: String {
        let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory() + "/.cache/ember/models"
        return directory + "/SmolLM2-135M-Instruct.Q4_1.gguf"
    }

    static var required: Bool { ProcessInfo.processInfo.environment["EMBER_REQUIRE_MODELS"] == "1" }

    /// Run when the model is cached, or when EMBER_REQUIRE_MODELS=1 (then a missing model fails).
    static var available: Bool { required || FileManager.default.fileExists(atPath: path) }

    static func configuration(context: Int = 1024, threads: Int = 2, budget: Int? = nil, paced: Bool = false) throws -> EngineConfiguration {
        try #require(FileManager.default.fileExists(atPath: path), "SmolLM2 is missing at \(path); run `ember models fetch smollm2`")
        return EngineConfiguration(model: .file(path: path), memoryBudgetBytes: budget, contextLength: context,
                                   threadCount: threads, pacesTokens: paced)
    }
}

/// Milliseconds since `start`.
private func milliseconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

@Suite("Engine", .serialized, .enabled(if: EngineModel.available, "SmolLM2 is not cached (EMBER_REQUIRE_MODELS=1 requires it)"))
struct EngineTests {
    static let questions = [
        "What is the capital of France?",
        "And what river flows through it?",
        "Name one famous museum there.",
    ]

    @Test("plan answers without loading: it fits 160 MiB, or one error says what would fit")
    func planWithinBudget() throws {
        let plan = try Engine.plan(EngineModel.configuration(context: 2048, budget: 160 << 20))
        #expect(plan.fits && plan.totalBytes <= 160 << 20)
        #expect(plan.context >= 256)
        do {
            _ = try Engine.plan(EngineModel.configuration(context: 2048, budget: 20 << 20))
            Issue.record("a 20 MiB budget should not fit SmolLM2")
        } catch let error as EngineError {
            #expect(error.code == .memoryBudget)
            #expect(error.description.contains("does not fit the memory budget"), "\(error)")
        }
        #expect(throws: EngineError(.invalidConfiguration, "the thread count must be between 1 and 256, not 0")) {
            _ = try Engine.plan(EngineModel.configuration(threads: 0))
        }
        let missing = EngineConfiguration(model: .file(path: "/nonexistent/model.gguf"))
        #expect { _ = try Engine.plan(missing) } throws: { ($0 as? EngineError)?.code == .unreadableModel }
    }

    @Test("an open file descriptor plans and loads like the path")
    func fileDescriptorSource() throws {
        let byPath = try EngineModel.configuration(context: 512)
        let descriptor = open(EngineModel.path, O_RDONLY)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        var byDescriptor = byPath
        byDescriptor.model = .fileDescriptor(descriptor, name: "smollm2")
        #expect(try Engine.plan(byDescriptor) == Engine.plan(byPath))
        let engine = try Engine(byDescriptor)
        #expect(engine.model.configuration.architecture == "llama")
    }

    /// The must-show measurement: turns 2 and 3 with the KV cache reused evaluate only their new
    /// tokens, and greedy replies are those of evaluating the whole conversation again.
    @Test("a three-turn chat reuses the KV cache and replies as a full recompute does")
    func reuseMatchesRecompute() async throws {
        let engine = try Engine(EngineModel.configuration(context: 1024))
        var results: [(replies: [String], evaluated: [Int], prompt: [Int], ttft: [Double])] = []
        for reuse in [true, false] {
            let chat = engine.chat(instructions: "You are a concise assistant.",
                                   options: ChatOptions(maxTokens: 48, sampling: .greedy, reusesCache: reuse))
            var replies: [String] = [], evaluated: [Int] = [], prompt: [Int] = [], ttft: [Double] = []
            for question in Self.questions {
                replies.append(try await chat.respond(to: question))
                let statistics = try #require(chat.lastStatistics)
                evaluated.append(statistics.evaluatedPromptTokens)
                prompt.append(statistics.promptTokens)
                ttft.append(statistics.timeToFirstTokenMilliseconds)
            }
            #expect(chat.history.count == 6)
            results.append((replies, evaluated, prompt, ttft))
        }
        let (reused, recomputed) = (results[0], results[1])
        #expect(reused.replies == recomputed.replies)
        #expect(reused.prompt == recomputed.prompt)
        #expect(recomputed.evaluated == recomputed.prompt)
        for turn in 1...2 {
            // Only the new turn: the end of the last reply, the new user message, the template.
            #expect(reused.evaluated[turn] < reused.prompt[turn] / 2, "turn \(turn + 1): \(reused.evaluated[turn]) of \(reused.prompt[turn])")
        }
        for turn in 1...2 {
            print(String(format: "engine: turn %d: %d prompt tokens; KV reuse evaluates %d, first token %.1f ms; without reuse %d, first token %.1f ms",
                         turn + 1, reused.prompt[turn], reused.evaluated[turn], reused.ttft[turn], recomputed.evaluated[turn], recomputed.ttft[turn]))
        }
    }

    /// Two requests at once — a chat turn (the generator's thread) and a background summary (the
    /// scheduler's) — each on a session of the plan, sharing one thread pool; the reply is the
    /// one the chat gets alone.
    @Test("a chat turn and a summary run at once on the plan's two sessions and one thread pool")
    func chatAndSummaryAtOnce() async throws {
        var configuration = try EngineModel.configuration(context: 2048, budget: 160 << 20)
        configuration.concurrentRequests = 2
        let plan = try Engine.plan(configuration)
        #expect(plan.sessions == 2 && plan.fits && plan.totalBytes <= 160 << 20)
        let single = try Engine.plan(EngineModel.configuration(context: plan.context, budget: 160 << 20))
        #expect(plan.keyValueCacheBytes == 2 * KeyValueCache.byteCount(layerCount: 30, capacity: plan.context, keyWidth: 192, valueWidth: 192,
                                                                       type: plan.keyValueType))
        #expect(single.sessions == 1)

        let engine = try Engine(configuration)
        #expect(engine.sessions.capacity == 2)
        let question = Self.questions[0]
        let note = "The team met on Tuesday. The beta moves by one week because the payment screen fails on older phones; Maria owns the fix."
        async let reply = engine.chat(options: ChatOptions(maxTokens: 32, sampling: .greedy)).respond(to: question)
        async let summary = engine.summarize(title: "Team sync", text: note)
        let (together, summarized) = try await (reply, summary)
        #expect(!summarized.summary.isEmpty && summarized.generatedTokens > 0)
        #expect(engine.sessions.lent == 0)
        // A third request waits for a free session instead of exceeding the plan.
        let alone = try await engine.chat(options: ChatOptions(maxTokens: 32, sampling: .greedy)).respond(to: question)
        #expect(together == alone)
    }

    @Test("the streamed pieces are the reply, and a second turn while one runs is refused")
    func streamingAndBusy() async throws {
        let engine = try Engine(EngineModel.configuration(context: 512))
        let chat = engine.chat(options: ChatOptions(maxTokens: 24, sampling: .greedy))
        var pieces: [String] = []
        let stream = chat.streamResponse(to: "Say hello.")
        do {
            for try await _ in chat.streamResponse(to: "Another one") {}
            Issue.record("a second turn in flight should be refused")
        } catch let error as EngineError {
            #expect(error.code == .busy)
        }
        for try await piece in stream { pieces.append(piece) }
        #expect(!pieces.isEmpty)
        #expect(chat.history.last == ChatMessage(role: .assistant, content: pieces.joined()))
    }

    @Test("cancelling during a 2,000-token prompt frees the engine within about one chunk")
    func cancelDuringLongPrompt() async throws {
        let engine = try Engine(EngineModel.configuration(context: 4096))
        let long = String(repeating: "The quick brown fox jumps over the lazy dog near the river bank. ", count: 170)
        #expect(try engine.model.tokenize(.chat([ChatMessage(role: .user, content: long)])).count > 2000)
        // One chunk's time on this machine now: a prompt of about one chunk (128 tokens).
        let probe = engine.chat(options: ChatOptions(maxTokens: 1, sampling: .greedy, reusesCache: false))
        let chunkText = String(repeating: "The quick brown fox jumps over the lazy dog near the river bank. ", count: 9)
        _ = try await probe.respond(to: chunkText)
        let chunkStatistics = try #require(probe.lastStatistics)
        let chunkMilliseconds = chunkStatistics.timeToFirstTokenMilliseconds * 128 / Double(chunkStatistics.promptTokens)

        let chat = engine.chat(options: ChatOptions(maxTokens: 8, sampling: .greedy, reusesCache: false))
        let task = Task { try await chat.respond(to: long) }
        try await Task.sleep(for: .milliseconds(Int(max(150, chunkMilliseconds * 2))))
        let cancelledAt = ContinuousClock.now
        task.cancel()
        await #expect { _ = try await task.value } throws: { ($0 as? EngineError)?.code == .cancelled }
        // The engine runs one turn at a time: this one starts only once the cancelled one stopped.
        let next = engine.chat(options: ChatOptions(maxTokens: 1, sampling: .greedy, reusesCache: false))
        _ = try await next.respond(to: "Hi")
        let nextMilliseconds = try #require(next.lastStatistics).timeToFirstTokenMilliseconds
        let freedAfter = milliseconds(since: cancelledAt) - nextMilliseconds
        print(String(format: "engine: cancel during a 2,000-token prompt: the engine was free %.0f ms after the cancel (one 128-token chunk: %.0f ms)",
                     freedAfter, chunkMilliseconds))
        #expect(chat.history.isEmpty)
        // Without the checks between chunks it would run the rest of the prompt (about 14 more chunks). The
        // bound leaves room for a loaded machine, where one chunk's time moves between the probe and the run.
        #expect(freedAfter < chunkMilliseconds * 6 + 250, "freed after \(freedAfter) ms; a chunk takes \(chunkMilliseconds) ms")
    }

    @Test("a memory warning forgets the cached conversation: the next turn evaluates it all")
    func memoryWarning() async throws {
        let engine = try Engine(EngineModel.configuration(context: 512))
        let chat = engine.chat(options: ChatOptions(maxTokens: 16, sampling: .greedy))
        _ = try await chat.respond(to: Self.questions[0])
        engine.memoryWarning(.moderate)
        _ = try await chat.respond(to: Self.questions[1])
        let statistics = try #require(chat.lastStatistics)
        #expect(statistics.evaluatedPromptTokens == statistics.promptTokens)
        #expect(engine.pacing.memoryWarnings == 1)
    }

    @Test("a conversation longer than the context drops its oldest exchanges and goes on")
    func contextWindow() async throws {
        let engine = try Engine(EngineModel.configuration(context: 256))
        let chat = engine.chat(instructions: "Answer in one sentence.", options: ChatOptions(maxTokens: 40, sampling: .greedy))
        for turn in 0..<6 {
            _ = try await chat.respond(to: "Tell me a fact about the number \(turn + 7), with some detail about why it matters.")
            let statistics = try #require(chat.lastStatistics)
            #expect(statistics.promptTokens < 256)
        }
        #expect(chat.history.count == 12)
    }

    @Test("thermal state paces replies through the adaptive policy and its hints reach the stream")
    func platformStatePacing() async throws {
        let engine = try Engine(EngineModel.configuration(context: 512, paced: true))
        let received = Mutex<[PerformanceHint]>([])
        let reader = Task {
            for await hint in engine.hints { received.withLock { $0.append(hint) } }
        }
        defer { reader.cancel() }
        let chat = engine.chat(options: ChatOptions(maxTokens: 24, sampling: .greedy))
        // Cool: the first prompt gets a boost; the policy measures thread counts on the first tokens.
        _ = try await chat.respond(to: "Write a long story about a cat who travels the world.")
        // Hot (iOS `serious`): reading speed on one thread.
        engine.update(PlatformState(thermalStatus: PlatformState.thermalStatus(iOSThermalState: 2), batteryPercent: 80))
        #expect(engine.platformState.thermalStatus == .severe)
        _ = try await chat.respond(to: "Continue the story with more detail about the journey.")
        let hot = try #require(chat.lastStatistics)
        try await Task.sleep(for: .milliseconds(50))
        let hints = received.withLock { $0 }
        #expect(hints.first == .boost, "\(hints)")
        #expect(hints.contains(.none))
        #expect(hints.contains { $0.targetSeconds != nil })
        let pacing = engine.pacing
        #expect(pacing.lastStepThreads == 1)
        #expect((pacing.idleSeconds[.pacing] ?? 0) > 0)
        if hot.generatedTokens > 4 {
            // 10 tokens per second when hot (the policy's reading speed), whatever the machine.
            #expect(hot.decodeTokensPerSecond < 12, "\(hot.decodeTokensPerSecond) tokens/s when hot")
        }
    }

    @Test("platform thermal readings map onto Android's scale")
    func thermalMapping() {
        #expect((0...3).map { PlatformState.thermalStatus(iOSThermalState: $0) } == [.none, .light, .severe, .critical])
        #expect(PlatformState.thermalStatus(iOSThermalState: 9) == .critical)
        #expect((0...6).map { PlatformState.thermalStatus(androidThermalStatus: $0) } == ThermalStatus.allCases)
        #expect(PlatformState.thermalStatus(androidThermalStatus: -1) == ThermalStatus.none)
        #expect(PlatformState.thermalStatus(androidThermalStatus: 40) == .shutdown)
        #expect(PlatformState(thermalStatus: .moderate).headroomNow >= AdaptivePolicy.Configuration().cautionHeadroom)
        #expect(PlatformState(thermalStatus: .severe, thermalHeadroom: 0.5).headroomAhead == 0.5)
    }
}

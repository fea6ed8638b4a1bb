import EmberGGUF
import EmberLM
import Foundation
import Testing

@Suite("Chat templates")
struct ChatTemplateTests {
    @Test("ChatML with the default system prompt embedded in SmolLM2's template")
    func chatML() throws {
        let file = try GGUFFile(path: TestSupport.modelPath("smollm2"))
        let template = try #require(ChatTemplate(gguf: file, fallback: nil))
        #expect(template.family == .chatML)
        #expect(template.defaultSystemPrompt == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        let text = template.render([ChatMessage(role: .user, content: "Hi")])
        #expect(text == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        let withSystem = template.render([ChatMessage(role: .system, content: "Be brief."), ChatMessage(role: .user, content: "Hi")])
        #expect(withSystem.hasPrefix("<|im_start|>system\nBe brief.<|im_end|>\n"))
    }

    @Test("Gemma turns fold the system prompt into the first user turn")
    func gemma() {
        let template = ChatTemplate(family: .gemma)
        let text = template.render([
            ChatMessage(role: .system, content: "Be brief."), ChatMessage(role: .user, content: "Hi"),
            ChatMessage(role: .assistant, content: "Hello!"), ChatMessage(role: .user, content: "Bye"),
        ])
        #expect(text == "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n")
    }

    @Test("Gemma 3's file has no template: the architecture's Gemma turns are used, with special ids")
    func gemmaFallback() throws {
        let model = try LanguageModel(path: TestSupport.modelPath("gemma3"))
        #expect(model.chatTemplate?.family == .gemma)
        let ids = try model.tokenize(.chat([ChatMessage(role: .user, content: "hi")]))
        // <bos> <start_of_turn> user \n hi <end_of_turn> \n <start_of_turn> model \n
        #expect(ids == [2, 105, 2364, 107, 2202, 106, 107, 105, 4368, 107])
    }

    /// llama.cpp's greedy continuation, step by step: teacher-forced on llama.cpp's tokens, Ember
    /// picks the same token at every step whose top two logits (in llama.cpp) are at least
    /// `nearTie` apart; at a closer call either of the two may win (Ember computes Q4_K in its own
    /// layout, and llama.cpp's one-token path adds up in other orders than its batches), but
    /// llama.cpp's token must be Ember's first or second. Generating freely, Ember's text equals
    /// llama.cpp's up to the first near-tie.
    @Test("A Gemma chat turn continues as llama.cpp continues it")
    func gemmaChatMatchesLlamaCpp() async throws {
        struct Fixture: Decodable {
            var prompt: String
            var prompt_ids: [Int32]
            var max_tokens: Int
            var text: String
            var gen_ids: [Int32]
            var top2_gaps: [Float]
        }
        let nearTie: Float = 0.25
        let fixture = try JSONDecoder().decode(Fixture.self, from: TestSupport.fixture("llamacpp-gemma3-chat.json"))
        let model = try LanguageModel(path: TestSupport.modelPath("gemma3"))
        #expect(model.chatTemplate?.render([ChatMessage(role: .user, content: "What is 2+2?")]) == fixture.prompt)
        #expect(try model.tokenize(.chat([ChatMessage(role: .user, content: "What is 2+2?")])) == fixture.prompt_ids)

        let session = InferenceSession(model: model.transformer, contextLength: 512, threadCount: 2)
        var firstNearTie: Int?
        for (step, expected) in fixture.gen_ids.enumerated() {
            let input = step == 0 ? fixture.prompt_ids : [fixture.gen_ids[step - 1]]
            var ranked: [(Int32, Float)] = []
            try session.evaluate(input, logits: .last) { _, logits in
                var best: (Int32, Float) = (-1, -.infinity), second: (Int32, Float) = (-1, -.infinity)
                for (index, value) in logits.enumerated() {
                    if value > best.1 { second = best; best = (Int32(index), value) } else if value > second.1 { second = (Int32(index), value) }
                }
                ranked = [best, second]
            }
            if fixture.top2_gaps[step] >= nearTie {
                #expect(ranked[0].0 == expected, "step \(step): Ember picks \(ranked[0].0), llama.cpp \(expected)")
            } else {
                firstNearTie = firstNearTie ?? step
                #expect(ranked.map(\.0).contains(expected), "step \(step): llama.cpp's \(expected) is not in Ember's top two")
                #expect(ranked[0].1 - ranked[1].1 < nearTie, "step \(step): a near-tie in llama.cpp is not one in Ember")
            }
        }

        let generator = Generator(model: model, contextLength: 512, threadCount: 2)
        var ids: [Int32] = []
        for try await event in generator.generate(GenerationRequest(prompt: .chat([ChatMessage(role: .user, content: "What is 2+2?")]),
                                                                    maxTokens: fixture.max_tokens, sampling: .greedy)) {
            if case .token(let id, _) = event, id >= 0 { ids.append(id) }
        }
        let agreed = firstNearTie ?? fixture.gen_ids.count
        #expect(Array(ids.prefix(agreed)) == Array(fixture.gen_ids.prefix(agreed)))
    }

    @Test("Templates are recognised from Jinja source")
    func recognition() {
        #expect(ChatTemplate(jinjaSource: "{{ '<start_of_turn>' + role }}")?.family == .gemma)
        #expect(ChatTemplate(jinjaSource: "{% for m in messages %}{{'<|im_start|>' + m['role']}}{% endfor %}")?.family == .chatML)
        #expect(ChatTemplate(jinjaSource: "[INST] {{ content }} [/INST]") == nil)
    }
}

@Suite("Streaming generation", .serialized)
struct GenerationTests {
    @Test("Events arrive in order and the statistics add up")
    func events() async throws {
        let model = try LanguageModel(path: TestSupport.modelPath("smollm2"))
        let generator = Generator(model: model, contextLength: 256, threadCount: 2)
        var sawPrompt = false, tokens = 0, text = ""
        var finish: (StopReason, GenerationStatistics)?
        for try await event in generator.generate(GenerationRequest(prompt: .text("The capital of France is"), maxTokens: 8, sampling: .greedy)) {
            switch event {
            case .promptProcessed(let count, _):
                #expect(!sawPrompt && tokens == 0)
                sawPrompt = true
                #expect(count == 5)
            case .token(let id, let piece):
                #expect(sawPrompt && finish == nil)
                if id >= 0 { tokens += 1 }
                text += piece
            case .finished(let reason, let statistics):
                finish = (reason, statistics)
            }
        }
        let (reason, statistics) = try #require(finish)
        #expect(reason == .maxTokens)
        #expect(statistics.generatedTokens == 8 && tokens == 8)
        #expect(statistics.promptTokens == 5)
        #expect(statistics.decodeTokensPerSecond > 0 && statistics.peakResidentBytes > 0)
        #expect(text.hasPrefix(" Paris."))
    }

    @Test("A follow-up prompt reuses the cached prefix")
    func prefixReuse() async throws {
        let model = try LanguageModel(path: TestSupport.modelPath("smollm2"))
        let generator = Generator(model: model, contextLength: 256, threadCount: 1)
        for try await _ in generator.generate(GenerationRequest(prompt: .text("One two three four"), maxTokens: 1, sampling: .greedy)) {}
        var evaluated = -1
        for try await event in generator.generate(GenerationRequest(prompt: .text("One two three four five"), maxTokens: 1, sampling: .greedy)) {
            if case .promptProcessed(let count, _) = event { evaluated = count }
        }
        #expect(evaluated == 1)
    }

    @Test("Dropping the stream stops generation before the next step")
    func cancellation() async throws {
        let model = try LanguageModel(path: TestSupport.modelPath("smollm2"))
        let generator = Generator(model: model, contextLength: 8192, threadCount: 1)
        // 8,000 tokens would take half a minute or more; the consumer leaves after three.
        var count = 0
        let firstStart = ContinuousClock.now
        for try await event in generator.generate(GenerationRequest(prompt: .text("Count:"), maxTokens: 8000, sampling: .greedy,
                                                                    ignoreEndOfGeneration: true)) {
            if case .token = event { count += 1 }
            if count == 3 { break }
        }
        // This machine's current speed (a loaded CI machine is slower): seconds per token so far.
        let secondsPerToken = (ContinuousClock.now - firstStart) / 3
        // The generator runs one job at a time: the next request finishes only once the first stopped.
        let start = ContinuousClock.now
        var finished = false
        for try await event in generator.generate(GenerationRequest(prompt: .text("Hello"), maxTokens: 2, sampling: .greedy)) {
            if case .finished = event { finished = true }
        }
        let waited = ContinuousClock.now - start
        #expect(finished)
        // Had it not stopped, the rest would take about 8,000 tokens' time; allow a quarter of that
        // (and at least 10 s), which a stopped job never needs.
        let bound = max(.seconds(10), secondsPerToken * 2000)
        #expect(waited < bound, "the abandoned generation went on for \(waited) (bound \(bound))")
    }

    @Test("A prompt longer than the context is refused with a clear error")
    func contextRefusal() async throws {
        let model = try LanguageModel(path: TestSupport.modelPath("smollm2"))
        let generator = Generator(model: model, contextLength: 16, threadCount: 1)
        await #expect(throws: LanguageModelError.self) {
            for try await _ in generator.generate(GenerationRequest(prompt: .text(String(repeating: "word ", count: 40)), maxTokens: 4)) {}
        }
    }
}

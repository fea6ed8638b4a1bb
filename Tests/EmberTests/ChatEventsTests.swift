import Foundation
import Synchronization
import Testing
import Ember

/// `ChatSession.events`/`startTurn`, what the C ABI relays: event order, token ids, paced events
/// with the policy's reason, background turns, cancellation that ends with the turn.
@Suite("Chat events", .serialized, .enabled(if: EngineModel.available, "SmolLM2 is not cached (EMBER_REQUIRE_MODELS=1 requires it)"))
struct ChatEventsTests {
    @Test("a turn's events: prompt processed once, tokens whose text is the reply, finished with its statistics")
    func eventOrder() async throws {
        let engine = try Engine(EngineModel.configuration(context: 512))
        let chat = engine.chat(options: ChatOptions(maxTokens: 20, sampling: .greedy))
        var events: [ChatEvent] = []
        for try await event in chat.events(to: "What is the capital of France?") { events.append(event) }
        guard case .promptProcessed(let promptTokens, _) = events.first else {
            Issue.record("the first event is \(String(describing: events.first))")
            return
        }
        guard case .finished(let reason, let statistics) = events.last else {
            Issue.record("the last event is \(String(describing: events.last))")
            return
        }
        let tokens = events.compactMap { event -> (Int32, String)? in
            if case .token(let id, let text) = event { return (id, text) }
            return nil
        }
        #expect(events.count == tokens.count + 2)
        #expect(promptTokens == statistics.evaluatedPromptTokens)
        #expect(tokens.filter { $0.0 >= 0 }.count == statistics.generatedTokens)
        #expect([StopReason.maxTokens, .endOfGeneration].contains(reason))
        #expect(chat.history.last == ChatMessage(role: .assistant, content: tokens.map(\.1).joined()))
        // The same greedy turn through the text stream gives the same reply.
        let again = engine.chat(options: ChatOptions(maxTokens: 20, sampling: .greedy))
        #expect(try await again.respond(to: "What is the capital of France?") == tokens.map(\.1).joined())
    }

    @Test("a phone about to shut down pauses the turn: paced events say thermal pause, and the turn ends once cool")
    func thermalPause() async throws {
        let engine = try Engine(EngineModel.configuration(context: 512, paced: true))
        let chat = engine.chat(options: ChatOptions(maxTokens: 8, sampling: .greedy))
        // The app works on a cool phone first, then the phone reaches EMERGENCY (shutdown imminent):
        // the heat is (in part) the app's, so pausing lets it cool. There every step pauses, the
        // prompt's first, whatever the machine's speed. (At CRITICAL only a reply ahead of its
        // reader pauses, one streaming faster than a person reads: a slow or loaded test machine
        // never gets ahead, so the pause there depends on the machine's speed; `AdaptivePolicyTests`
        // checks that rule on a scripted clock. Heat the environment alone causes pauses nothing:
        // the policy serves the reply at its lowest-power setting instead.)
        _ = try await chat.respond(to: "Hi")
        engine.update(PlatformState(thermalStatus: .emergency, thermalHeadroom: 0.99, batteryPercent: 50, isCharging: false))
        let reasons = Mutex<[IdleReason]>([])
        let tokensBeforePause = Mutex<Int?>(nil)
        let turn = try chat.startTurn(to: "Name a river.")
        let reader = Task {
            var finished = false
            var tokens = 0
            for try await event in turn.events {
                if case .paced(let seconds, let reason) = event {
                    #expect(seconds > 0)
                    reasons.withLock { $0.append(reason) }
                    if reason == .thermalPause { tokensBeforePause.withLock { $0 = $0 ?? tokens } }
                }
                if case .token = event { tokens += 1 }
                if case .finished = event { finished = true }
            }
            return finished
        }
        let start = ContinuousClock.now
        while reasons.withLock({ !$0.contains(.thermalPause) }), ContinuousClock.now - start < .seconds(120) {  // a loaded machine: the first step may take long
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(reasons.withLock { $0.contains(.thermalPause) }, "\(reasons.withLock { $0 })")
        engine.update(.nominal)
        #expect(try await reader.value)
        // The prompt paused before any token: nothing of the turn ran at EMERGENCY.
        #expect(tokensBeforePause.withLock { $0 } == 0)
    }

    @Test("a background turn on a phone warm from the app's own work waits to cool; cancelling it ends the stream and leaves no trace")
    func backgroundDeferredThenCancelled() async throws {
        let engine = try Engine(EngineModel.configuration(context: 512, paced: true))
        let chat = engine.chat(options: ChatOptions(maxTokens: 8, sampling: .greedy))
        // A turn on a cool phone, then the phone is warm: the heat is the app's, so background work
        // waits for it to go (a phone the environment alone keeps warm would not cool by waiting).
        _ = try await chat.respond(to: "Hi")
        engine.update(PlatformState(thermalStatus: .moderate, thermalHeadroom: 0.8, thermalHeadroomForecast: 0.8,
                                    batteryPercent: 50, isCharging: false))
        let turn = try chat.startTurn(to: "Summarize: the meeting moved to Friday.",
                                      turn: TurnOptions(requestClass: .background, deadlineSeconds: 3600))
        #expect(throws: EngineError.self) { _ = try chat.startTurn(to: "And another") }
        var deferral: IdleReason?
        do {
            for try await event in turn.events {
                if case .paced(_, let reason) = event, deferral == nil {
                    deferral = reason
                    turn.cancel()
                }
            }
            Issue.record("the cancelled turn ended without an error")
        } catch let error as EngineError {
            #expect(error.code == .cancelled)
        }
        #expect(deferral == .thermalDeferral)
        #expect(chat.history.count == 2, "the cancelled turn left no trace in the history")
        // Free again at once: the next turn is not refused as busy.
        engine.update(.nominal)
        _ = try await chat.respond(to: "Hi again")
        #expect(chat.history.count == 4)
    }
}

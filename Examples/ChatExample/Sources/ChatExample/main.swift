import Ember
import Foundation
import Synchronization

// SmolLM2 within a 160 MiB budget, a three-turn chat, a thermal change before the third turn, and
// the performance hints the engine published. Usage: ChatExample [MODEL.gguf]
let defaultPath = NSHomeDirectory() + "/.cache/ember/models/SmolLM2-135M-Instruct.Q4_1.gguf"
let path = CommandLine.arguments.dropFirst().first ?? defaultPath

let configuration = EngineConfiguration(model: .file(path: path), memoryBudgetBytes: 160 << 20, contextLength: 2048)
let plan = try Engine.plan(configuration)
print("plan: \(ByteCount.format(plan.totalBytes)) of 160 MiB, context \(plan.context), \(plan.keyValueType.rawValue) KV cache")
let engine = try Engine(configuration)

let hints = Mutex<[PerformanceHint]>([])
let reader = Task {
    for await hint in engine.hints { hints.withLock { $0.append(hint) } }
}

let chat = engine.chat(instructions: "You are a helpful assistant. Answer in two sentences.",
                       options: ChatOptions(maxTokens: 64, sampling: .greedy))
let questions = [
    "What is the capital of France?",
    "What river flows through it?",
    "Name one museum there.",
]
for (turn, question) in questions.enumerated() {
    if turn == 2 {
        // iOS would read ProcessInfo.processInfo.thermalState.rawValue; Android PowerManager's status.
        engine.update(PlatformState(thermalStatus: PlatformState.thermalStatus(iOSThermalState: 2), batteryPercent: 60))
        print("[thermal state: serious]")
    }
    print("> \(question)")
    for try await piece in chat.streamResponse(to: question) {
        print(piece, terminator: "")
        fflush(nil)  // every C stream: the piece shows at once
    }
    print()
    if let statistics = chat.lastStatistics {
        print(String(format: "[turn %d: %d prompt tokens, %d evaluated; first token %.0f ms; %.1f tokens/s]",
                     turn + 1, statistics.promptTokens, statistics.evaluatedPromptTokens,
                     statistics.timeToFirstTokenMilliseconds, statistics.decodeTokensPerSecond))
    }
}
try await Task.sleep(for: .milliseconds(20))
reader.cancel()
let received = hints.withLock { $0 }
print("hints: " + received.map { hint in
    switch hint {
    case .none: "none"
    case .boost: "boost"
    case .target(let seconds): String(format: "target %.0f ms", seconds * 1000)
    }
}.joined(separator: ", "))
let pacing = engine.pacing
print(String(format: "pacing: %d steps, last on %d thread(s), %.2f s of gaps between tokens",
             pacing.steps, pacing.lastStepThreads, pacing.idleSeconds[.pacing] ?? 0))

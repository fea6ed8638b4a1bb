// `ember-decode-steps MODEL STEPS`: loads a GGUF model and runs STEPS single-token decode steps on
// one thread with greedy choice, then prints the last token. It exists for instruction counts under
// valgrind (scripts/instructions.sh): a plain synchronous program, because valgrind 3.19 crashes
// on the Swift concurrency runtime that the `ember` command starts. Two runs with different STEPS
// give the instructions of one step as the difference over the extra steps.
import EmberLM
import Foundation

let arguments = CommandLine.arguments
guard arguments.count == 3, let steps = Int(arguments[2]), steps >= 0 else {
    print("usage: ember-decode-steps MODEL STEPS")
    exit(2)
}
do {
    let model = try LanguageModel(path: arguments[1])
    let session = InferenceSession(model: model.transformer, contextLength: steps + 2, batchSize: 1, threadCount: 1)
    var token = model.tokenizer.bosID ?? 1
    try session.evaluate([token], logits: .last) { _, logits in token = Sampler.argmax(logits) }
    for _ in 0..<steps {
        try session.evaluate([token], logits: .last) { _, logits in token = Sampler.argmax(logits) }
    }
    print(token)
} catch {
    print("ember-decode-steps: \(error)")
    exit(1)
}

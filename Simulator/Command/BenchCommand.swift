import ArgumentParser
import EmberCore
import EmberBLAS
import EmberKernels
import EmberLM
import Foundation

/// `ember bench`: llama-bench's measurement — prompt processing of random tokens in one batch, and
/// generation of single-token steps without sampling — as mean ± sd over repetitions after a warm-up.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure prompt processing and generation speed the way llama-bench does.")

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Tokens of the prompt-processing test (one batch).")
    var promptTokens: Int = 512

    @Option(name: .long, help: "Tokens of the generation test (one step each).")
    var genTokens: Int = 128

    @Option(name: .long, help: """
        Tokens already in the context when the generation test starts (llama-bench's --n-depth): each \
        generation run first processes this many random tokens, untimed, so the steps attend over them.
        """)
    var depth: Int = 0

    @Option(name: .long, help: "Measured repetitions of each test, after one warm-up run.")
    var repetitions: Int = 5

    @Option(name: .long, help: "Seed of the random prompt tokens.")
    var seed: UInt64 = 1

    @Flag(name: .long, help: """
        Also measure the machine's streaming read bandwidth at 1 and 2 threads (and at --threads) and report \
        the generation speed as a fraction of its roofline: bandwidth ÷ weight bytes read per token.
        """)
    var roofline = false

    @Option(name: .long, help: """
        The integer kernel of small interleaved weights (prompt batches, and single tokens where the CPU has AVX-512 VBMI): \(PromptKernel.allCases.map(\.rawValue).joined(separator: ", ")) \
        (default: the fastest this CPU runs, \(PromptKernel.detected.rawValue)).
        """)
    var promptKernel: String?

    @Flag(name: .long, help: """
        Multiply prompt batches over F16/F32 weights with the system BLAS (OpenBLAS), as llama.cpp's BLAS \
        backend does, instead of Ember's kernels (a model written by `ember convert`).
        """)
    var blas = false

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    func validate() throws {
        guard promptTokens >= 0, genTokens >= 0, promptTokens + genTokens > 0 else {
            throw ValidationError("--prompt-tokens and --gen-tokens must not be negative, and one must be positive.")
        }
        guard depth >= 0 else { throw ValidationError("--depth must not be negative.") }
        guard depth <= 1 << 20 else { throw ValidationError("--depth must be at most \(1 << 20) tokens.") }
        guard !blas || BLASMatrixMultiply.isAvailable else { throw ValidationError("--blas: this build links no BLAS library.") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1.") }
        if let promptKernel {
            guard let kernel = PromptKernel(rawValue: promptKernel) else {
                throw ValidationError("--prompt-kernel must be one of \(PromptKernel.allCases.map(\.rawValue).joined(separator: ", ")), not '\(promptKernel)'.")
            }
            guard kernel.isAvailable else { throw ValidationError("This CPU cannot run the \(promptKernel) kernels.") }
        }
    }

    struct Summary {
        var mean: Double
        var standardDeviation: Double

        init(_ samples: [Double]) {
            let average = samples.reduce(0, +) / Double(max(samples.count, 1))
            let squares = samples.reduce(0) { $0 + ($1 - average) * ($1 - average) }
            mean = average
            standardDeviation = samples.count > 1 ? (squares / Double(samples.count - 1)).squareRoot() : 0
        }

        var json: String { "{\"mean\":\(JSONText.number(mean)),\"sd\":\(JSONText.number(standardDeviation))}" }
        var text: String { String(format: "%.1f ± %.1f", mean, standardDeviation) }
    }

    func run() throws {
        if let promptKernel { PromptKernel.current = PromptKernel(rawValue: promptKernel)! }
        if blas { FloatBatchKernel.installed = BLASMatrixMultiply.kernel }
        let context = max(promptTokens, depth + genTokens, 16) + 1
        let (model, plan) = try modelOptions.loadWithinBudget(context: context, batchSize: max(1, min(max(promptTokens, depth), 512)),
                                                              contextAdjustable: false)
        let threads = modelOptions.threadCount
        let vocabulary = model.configuration.vocabularySize
        var random = SeededRandomSource(seed: seed)
        let prompt = (0..<promptTokens).map { _ in Int32(random.next() % UInt64(vocabulary)) }
        let prefix = (0..<depth).map { _ in Int32(random.next() % UInt64(vocabulary)) }
        let session = InferenceSession(model: model.transformer, contextLength: context,
                                       batchSize: plan.batchSize, threadCount: threads, keyValueType: plan.keyValueType)

        // First token after load: the time a user waits before anything happens.
        let firstStart = MonotonicClock.nanoseconds()
        try session.evaluate([model.tokenizer.bosID ?? 1], logits: .last)
        let firstTokenMilliseconds = MonotonicClock.milliseconds(since: firstStart)

        func promptProcessing() throws -> Double {
            session.reset()
            let start = MonotonicClock.nanoseconds()
            try session.evaluate(prompt, logits: .last)
            return Double(promptTokens) / (Double(MonotonicClock.nanoseconds() - start) / 1e9)
        }
        func generation() throws -> Double {
            session.reset()
            if !prefix.isEmpty { try session.evaluate(prefix, logits: .none) }
            // As llama-bench: every step computes the logits, none is sampled (the same token is
            // fed again, as scripts/bench_llamacpp.py does for llama.cpp).
            let token = prompt.first ?? prefix.first ?? 1
            let start = MonotonicClock.nanoseconds()
            for _ in 0..<genTokens {
                try session.evaluate([token], logits: .last)
            }
            return Double(genTokens) / (Double(MonotonicClock.nanoseconds() - start) / 1e9)
        }

        var promptSamples: [Double] = []
        var generationSamples: [Double] = []
        // One warm-up and `repetitions` measured runs of each test.
        let runs = (promptTokens > 0 ? repetitions + 1 : 0) + (genTokens > 0 ? repetitions + 1 : 0)
        let bar = ProgressBar("benchmarking", total: { "\($0) runs" })
        var runsDone = 0
        func ran() { runsDone += 1; bar.update(runsDone, runs) }
        bar.update(0, runs)
        if promptTokens > 0 {
            _ = try promptProcessing()
            ran()
            for _ in 0..<repetitions { promptSamples.append(try promptProcessing()); ran() }
        }
        if genTokens > 0 {
            _ = try generation()
            ran()
            for _ in 0..<repetitions { generationSamples.append(try generation()); ran() }
        }
        bar.finish()
        let pp = Summary(promptSamples), tg = Summary(generationSamples)
        // Before the bandwidth buffer exists, which is not the model's memory.
        let peak = ProcessMemory.peakResidentBytes()
        let bytesPerToken = model.transformer.weightBytesPerToken
        let rooflines = roofline ? Self.rooflines(threads: threads, bytesPerToken: bytesPerToken, generation: genTokens > 0 ? tg.mean : nil) : []
        if json {
            print("{\"pp_tok_s\":\(pp.json),\"tg_tok_s\":\(tg.json),\"load_ms\":\(JSONText.number(model.loadMilliseconds)),"
                + "\"peak_rss_bytes\":\(peak),\"first_token_ms\":\(JSONText.number(firstTokenMilliseconds)),"
                + "\"model\":\(JSONText.string(model.configuration.name)),\"threads\":\(threads),"
                + "\"prompt_kernel\":\(JSONText.string(PromptKernel.current.rawValue)),\"blas\":\(blas ? JSONText.string(BLASMatrixMultiply.libraryDescription ?? "") : "null"),\"prompt_tokens\":\(promptTokens),\"gen_tokens\":\(genTokens),\"depth\":\(depth),\"repetitions\":\(repetitions),"
                + "\"weight_bytes_per_token\":\(bytesPerToken)"
                + (roofline ? ",\"roofline\":[\(rooflines.map(\.json).joined(separator: ","))]" : "") + "}")
        } else {
            print("model: \(model.configuration.name) (\(model.configuration.architecture)), threads: \(threads), "
                  + "prompt kernel: \(PromptKernel.current.rawValue)" + (blas ? ", F16/F32 batches: \(BLASMatrixMultiply.libraryDescription ?? "")" : ""))
            print(String(format: "load %.1f ms, first token %.1f ms, peak RSS %@", model.loadMilliseconds, firstTokenMilliseconds,
                         ByteCount.format(peak)))
            if promptTokens > 0 { print("pp\(promptTokens): \(pp.text) tokens/s") }
            if genTokens > 0 { print("tg\(genTokens)\(depth > 0 ? " @ d\(depth)" : ""): \(tg.text) tokens/s") }
            for line in rooflines { print(line.text(bytesPerToken: bytesPerToken)) }
        }
    }

    /// The read bandwidth at one thread count and what it means for decoding.
    struct Roofline {
        var threads: Int
        var bytesPerSecond: Double
        /// Tokens per second if a decode step cost only reading its weights once.
        var rooflineTokensPerSecond: Double
        /// The measured generation speed as a fraction of the roofline (nil without a generation test).
        var fraction: Double?
        /// Whether the generation test ran at this thread count.
        var matchesGeneration: Bool

        var json: String {
            "{\"threads\":\(threads),\"read_bandwidth_gb_s\":\(JSONText.number(bytesPerSecond / 1e9)),"
                + "\"roofline_tok_s\":\(JSONText.number(rooflineTokensPerSecond))"
                + (matchesGeneration ? ",\"tg_fraction_of_roofline\":\(fraction.map(JSONText.number) ?? "null")" : "") + "}"
        }

        func text(bytesPerToken: Int) -> String {
            var line = String(format: "read bandwidth, %d thread%@: %.1f GB/s; roofline %.0f tokens/s (%.1f MB per token)",
                              threads, threads == 1 ? "" : "s", bytesPerSecond / 1e9, rooflineTokensPerSecond, Double(bytesPerToken) / 1e6)
            if matchesGeneration, let fraction { line += String(format: "; generation at %.0f %% of it", fraction * 100) }
            return line
        }
    }

    /// Streaming read bandwidth (`MemoryBandwidth`) at 1 and 2 threads and at `threads`, each
    /// turned into the decode roofline of a model reading `bytesPerToken` per token.
    static func rooflines(threads: Int, bytesPerToken: Int, generation: Double?) -> [Roofline] {
        let counts = Array(Set([1, 2, threads])).sorted()
        let pool = ThreadPool(threadCount: counts.last!)
        let bar = ProgressBar("measuring bandwidth", total: { "\($0) thread counts" })
        bar.update(0, counts.count)
        var results: [Roofline] = []
        for (index, count) in counts.enumerated() {
            pool.activeThreadCount = count
            let measurement = MemoryBandwidth.measure(pool: pool, nanoseconds: MonotonicClock.nanoseconds)
            let roof = measurement.bytesPerSecond / Double(max(bytesPerToken, 1))
            results.append(Roofline(threads: count, bytesPerSecond: measurement.bytesPerSecond, rooflineTokensPerSecond: roof,
                                    fraction: generation.map { $0 / roof }, matchesGeneration: count == threads))
            bar.update(index + 1, counts.count)
        }
        bar.finish()
        return results
    }
}

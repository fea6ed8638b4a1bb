import EmberCore
import EmberGGUF
import EmberKernels

/// Every byte a model will hold, worked out before loading it: weights, KV cache, scratch and
/// activations, tokenizer tables and runtime overhead — and whether that fits a budget.
public struct MemoryPlan: Sendable, Equatable {
    /// Weights resident while generating (rearranged copies, mapped tensors, norms; with
    /// streaming, about one layer and a slice of the output projection).
    public var weightsBytes: Int
    public var keyValueCacheBytes: Int
    public var scratchBytes: Int
    /// Runtime, tokenizer tables and metadata.
    public var overheadBytes: Int
    public var budgetBytes: Int?
    public var context: Int
    public var batchSize: Int
    public var keyValueType: KeyValueType = .f16
    public var streamWeights: Bool
    /// Sequences generating at once, each with its own KV cache and scratch (`SessionPool`); the
    /// thread pool they share is counted once (in `scratchBytes`, with the sessions' scratch).
    public var sessions: Int = 1

    /// The sum of the parts; `Int.max` when it would overflow (no budget holds it).
    public var totalBytes: Int {
        [keyValueCacheBytes, scratchBytes, overheadBytes].reduce(weightsBytes) { Self.sum($0, $1) }
    }

    /// `a + b`, or `Int.max` when that overflows.
    static func sum(_ a: Int, _ b: Int) -> Int {
        let (total, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : total
    }

    /// `a × b`, or `Int.max` when that overflows.
    static func product(_ a: Int, _ b: Int) -> Int {
        let (total, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? .max : total
    }

    /// The most positions a plan holds (`ModelConfiguration.Limits.contextLength`); a longer
    /// `context` is refused before anything is multiplied by it.
    public static let maximumContext = ModelConfiguration.Limits.contextLength
    public var fits: Bool { budgetBytes.map { totalBytes <= $0 } ?? true }

    /// Resident bytes of the process before a model: the Swift runtime, Foundation, the binary.
    public static let runtimeBytes = 23 << 20
    /// Tokenizer and metadata tables per vocabulary entry (strings, scores, types, merges).
    public static let bytesPerVocabularyEntry = 150

    /// The plan for `file` at `context` positions, `batchSize` tokens per step and `threadCount`
    /// threads, for `sessions` sequences generating at once (each its own KV cache and scratch, one
    /// shared thread pool).
    public static func make(file: GGUFFile, context: Int, batchSize: Int = 512, threadCount: Int,
                            streamWeights: Bool = false, interleave: Bool = true,
                            keyValueType: KeyValueType = .f16, sessions: Int = 1,
                            budgetBytes: Int? = nil) throws(LanguageModelError) -> MemoryPlan {
        let configuration = try ModelConfiguration(gguf: file)
        guard let definition = ArchitectureRegistry.definition(for: configuration.architecture) else {
            throw LanguageModelError(.unsupportedArchitecture,
                "architecture '\(configuration.architecture)' is not supported (supported: \(ArchitectureRegistry.supportedNames.joined(separator: ", ")))")
        }
        // The architecture's own metadata (layer patterns, experts, per-layer shapes) is checked
        // as loading checks it, before the plan multiplies anything by it.
        _ = try definition.traits(configuration: configuration, gguf: file)
        guard (1...maximumContext).contains(context) else {
            throw LanguageModelError(.invalidInput, "a context of \(context) positions is outside 1...\(maximumContext)")
        }
        guard batchSize >= 1, (1...4096).contains(threadCount) else {
            throw LanguageModelError(.invalidInput, "a plan needs a batch of at least 1 token and 1 to 4096 threads, not \(batchSize) and \(threadCount)")
        }
        guard (1...64).contains(sessions) else {
            throw LanguageModelError(.invalidInput, "a plan holds 1 to 64 sessions at once, not \(sessions)")
        }
        let hasOutput = file.tensor(named: "output.weight") != nil
        var weights = 0
        var largestLayer = 0
        var layerBytes: [Int: Int] = [:]
        for tensor in file.tensors {
            let bytes = tensor.byteCount
            if tensor.dimensions.count < 2 || tensor.rowCount == 1 {
                weights += tensor.elementCount * 4  // norms are copied out as Float
                continue
            }
            if (tensor.name == "token_embd.weight" && hasOutput) || tensor.name == "per_layer_token_embd.weight" {
                continue  // looked up by row from the mapping (Gemma's per-layer embeddings too)
            }
            // A 3-D tensor holds one matrix per expert ([columns, rows, experts]).
            let matrixCount = tensor.dimensions.count > 2 ? tensor.dimensions.dropFirst(2).reduce(1, *) : 1
            if streamWeights {
                if tensor.name.hasPrefix("blk."), let number = Int(tensor.name.split(separator: ".")[1]) {
                    // Only the routed experts stream in, a few at a time (see `MixtureOfExpertsBlock`).
                    let resident = min(matrixCount, MixtureOfExpertsBlock.streamedResidentExperts)
                    layerBytes[number, default: 0] += matrixCount > 1 ? bytes / matrixCount * resident : bytes
                }
                continue
            }
            // Experts are rearranged one by one, so their own row count decides.
            let rearranged = interleave && InterleavedWeights.supports(tensor.type, rows: tensor.rowCount / matrixCount,
                                                                       columns: tensor.rowLength)
            weights = sum(weights, rearranged ? residentBytes(of: tensor) : bytes)
        }
        if streamWeights {
            largestLayer = layerBytes.values.max() ?? 0
            // The running layer, pages of the next one being read ahead, and a slice of the output.
            weights += largestLayer + largestLayer / 4 + (4 << 20) + (1 << 20)
        }
        // Architectures with their own forward pass may share caches across layers and vary head shapes.
        let cacheShape = try (ArchitectureRegistry.definition(for: configuration.architecture) as? any CustomForwardArchitecture.Type)?
            .keyValueCacheShape(configuration: configuration, file: file)
            ?? KeyValueCacheShape(layerCount: configuration.layerCount,
                                  keyWidth: configuration.keyValueHeadCount * configuration.keyLength,
                                  valueWidth: configuration.keyValueHeadCount * configuration.valueLength)
        let keyValue = KeyValueCache.byteCount(
            layerCount: cacheShape.layerCount, capacity: context,
            keyWidth: cacheShape.keyWidth, valueWidth: cacheShape.valueWidth, type: keyValueType)
        // Every session's scratch; the one thread pool's workspaces once.
        let pool = InferenceSession.threadPoolByteCount(threadCount: threadCount)
        let sessionScratch = InferenceSession.scratchByteCount(
            configuration: configuration, file: file, contextLength: context, batchSize: batchSize,
            threadCount: threadCount, streamWeights: streamWeights) - pool
        let scratch = sum(product(sessionScratch, sessions), pool)
        let overhead = sum(runtimeBytes + threadCount * (1 << 20) / 4,
                           product(configuration.vocabularySize, bytesPerVocabularyEntry))
        return MemoryPlan(weightsBytes: weights, keyValueCacheBytes: product(keyValue, sessions), scratchBytes: scratch,
                          overheadBytes: overhead, budgetBytes: budgetBytes, context: context, batchSize: batchSize,
                          keyValueType: keyValueType, streamWeights: streamWeights, sessions: sessions)
    }

    /// Bytes of `tensor` once rearranged for the kernels (its format's interleaved layout).
    static func residentBytes(of tensor: GGUFTensorInfo) -> Int {
        QuantizedFormat.format(tensor.type)?.residentByteCount(elements: tensor.elementCount) ?? tensor.byteCount
    }

    /// The largest plan within `budgetBytes`: the requested one if it fits; otherwise smaller steps
    /// (batch 64), then shorter contexts down to `minimumContext`, then — if `allowStreaming` —
    /// weight streaming. Throws one line saying what would fit when nothing does.
    ///
    /// With `keyValueTypes` of more than one type, each is tried (at every context) in order.
    public static func fit(file: GGUFFile, budgetBytes: Int, context: Int, batchSize: Int = 512, threadCount: Int,
                           allowStreaming: Bool, requireStreaming: Bool = false, keyValueTypes: [KeyValueType] = [.f16],
                           minimumContext: Int = 256, sessions: Int = 1, interleave: Bool = true) throws(LanguageModelError) -> MemoryPlan {
        var candidates: [(context: Int, batch: Int, stream: Bool, kv: KeyValueType)] = []
        func add(_ candidate: (context: Int, batch: Int, stream: Bool, kv: KeyValueType)) {
            if !candidates.contains(where: { $0 == candidate }) { candidates.append(candidate) }
        }
        // In the order the issue of budgets lists: a shorter context keeps the numbers exact, then a
        // quantized cache, then streamed weights.
        for stream in requireStreaming ? [true] : (allowStreaming ? [false, true] : [false]) {
            for kv in keyValueTypes {
                for batch in [batchSize, min(batchSize, 64), min(batchSize, 16)] { add((context, batch, stream, kv)) }
                var length = context
                while length / 2 >= min(minimumContext, context) && length > minimumContext {
                    length /= 2
                    add((length, min(batchSize, 16), stream, kv))
                }
            }
        }
        var smallest: MemoryPlan?
        for candidate in candidates {
            let plan = try make(file: file, context: candidate.context, batchSize: candidate.batch, threadCount: threadCount,
                                streamWeights: candidate.stream, interleave: interleave, keyValueType: candidate.kv, sessions: sessions,
                                budgetBytes: budgetBytes)
            if plan.fits { return plan }
            if smallest == nil || plan.totalBytes < smallest!.totalBytes { smallest = plan }
        }
        let needed = smallest!
        var hint = "the smallest plan (context \(needed.context), \(needed.keyValueType.rawValue) KV cache\(needed.streamWeights ? ", streamed weights" : "")\(sessions > 1 ? ", \(sessions) sessions at once" : "")) needs \(ByteCount.format(needed.totalBytes))"
        if !allowStreaming {
            let streamed = try make(file: file, context: minimumContext, batchSize: 16, threadCount: threadCount,
                                    streamWeights: true, interleave: interleave, keyValueType: keyValueTypes.last ?? .f16, sessions: sessions,
                                    budgetBytes: budgetBytes)
            hint += streamed.fits ? "; --stream-weights would fit (\(ByteCount.format(streamed.totalBytes)))"
                                  : "; even --stream-weights needs \(ByteCount.format(streamed.totalBytes))"
        }
        throw LanguageModelError(.memoryBudget,
            "the model does not fit the memory budget of \(ByteCount.format(budgetBytes)): \(hint)")
    }
}

import EmberCore
import EmberGGUF
import EmberLM
import EmberStorage
import Foundation

/// What an `Engine` runs and within which limits: the model file, the memory budget, the context,
/// threads, KV cache type and whether weights may stream from the file.
public struct EngineConfiguration: Sendable, Equatable {
    /// Where the model comes from.
    public enum ModelSource: Sendable, Equatable {
        /// A GGUF file or an `ember pack` container (`.ggz`), told apart by its first bytes.
        case file(path: String)
        /// A GGUF file, memory-mapped.
        case gguf(path: String)
        /// A compressed container (`ember pack`), decoded into memory with every chunk checked.
        case container(path: String)
        /// An open file (a GGUF file or a container), for sandboxes that hand out descriptors rather
        /// than paths (Android `ParcelFileDescriptor.getFd()`, an iOS security-scoped file). The
        /// descriptor stays the caller's; `name` names the model in messages.
        case fileDescriptor(Int32, name: String)
    }

    /// Whether weights may be read from the file layer by layer instead of kept resident.
    public enum WeightStreaming: String, Sendable, Equatable, CaseIterable {
        /// Always resident (fastest; the budget must hold them).
        case never
        /// Streamed only when no resident plan fits the budget.
        case allowed
        /// Always streamed (smallest footprint, slower decoding).
        case always
    }

    public var model: ModelSource
    /// Bytes the whole process may use (weights, KV cache, scratch, runtime); nil plans without a limit.
    public var memoryBudgetBytes: Int?
    /// Positions of the KV cache asked for (a budget may shorten it when `adjustsContext`).
    public var contextLength: Int
    /// Whether a budget may choose a shorter context (down to 256) rather than refuse.
    public var adjustsContext: Bool
    /// Worker threads (nil: every active core).
    public var threadCount: Int?
    /// The KV cache type; nil: f16, or with a budget the first of f16, q8_0, q4_0 that fits.
    public var keyValueType: KeyValueType?
    public var weightStreaming: WeightStreaming
    /// Prompt tokens evaluated per step at most (a budget may choose smaller steps).
    public var batchSize: Int
    /// Pace replies with the scheduler's adaptive policy from the platform state (`Engine.update`):
    /// fewer threads and gaps between tokens when the phone is hot or on battery saver. Off: every
    /// token as fast as possible on every thread.
    public var pacesTokens: Bool
    /// Prompt tokens evaluated between two cancellation checks.
    public var prefillChunk: Int
    /// Requests that generate at once — chat turns and background summaries (`Engine.summarize`),
    /// each with its own KV cache and scratch, all on one shared thread pool. The plan counts every
    /// one; more wait for a free one.
    public var concurrentRequests: Int = 1
    /// Rearrange weights for the fast kernels at load (a resident copy); false keeps the file's layout.
    public var interleavesWeights = true

    public init(model: ModelSource, memoryBudgetBytes: Int? = nil, contextLength: Int = 2048, adjustsContext: Bool = true,
                threadCount: Int? = nil, keyValueType: KeyValueType? = nil, weightStreaming: WeightStreaming = .never,
                batchSize: Int = 512, pacesTokens: Bool = true, prefillChunk: Int = 128) {
        self.model = model
        self.memoryBudgetBytes = memoryBudgetBytes
        self.contextLength = contextLength
        self.adjustsContext = adjustsContext
        self.threadCount = threadCount
        self.keyValueType = keyValueType
        self.weightStreaming = weightStreaming
        self.batchSize = batchSize
        self.pacesTokens = pacesTokens
        self.prefillChunk = prefillChunk
    }

    /// The thread count used: `threadCount`, or every active core.
    public var resolvedThreadCount: Int { threadCount ?? max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The name of the model in messages.
    var modelName: String {
        switch model {
        case .file(let path), .gguf(let path), .container(let path): path
        case .fileDescriptor(let descriptor, let name): name.isEmpty ? "file descriptor \(descriptor)" : name
        }
    }

    func validate() throws(EngineError) {
        guard (1...16).contains(concurrentRequests) else {
            throw EngineError(.invalidConfiguration, "concurrent requests must be between 1 and 16, not \(concurrentRequests)")
        }
        if let threadCount, !(1...256).contains(threadCount) {
            throw EngineError(.invalidConfiguration, "the thread count must be between 1 and 256, not \(threadCount)")
        }
        guard contextLength >= 8 else {
            throw EngineError(.invalidConfiguration, "the context must hold at least 8 tokens, not \(contextLength)")
        }
        guard batchSize >= 1, prefillChunk >= 1 else {
            throw EngineError(.invalidConfiguration, "the batch size and prompt chunk must be at least 1 token (\(batchSize), \(prefillChunk))")
        }
        if let memoryBudgetBytes, memoryBudgetBytes <= 0 {
            throw EngineError(.invalidConfiguration, "the memory budget must be positive, not \(memoryBudgetBytes) bytes")
        }
    }
}

/// A model file opened for planning: its GGUF view (mapped, or decoded from a container) and how
/// it was found. Loading reuses it, so a file is parsed once.
public struct OpenedModel: @unchecked Sendable {
    /// `@unchecked Sendable`: a `GGUFFile` is immutable after parsing (mapped read-only or owned).
    public let file: GGUFFile
    /// The model's name in messages (its path, or the descriptor's name).
    public let name: String
    /// Whether it came from a compressed container (decoded into memory; weights cannot stream).
    public let isContainer: Bool

    public init(file: GGUFFile, name: String, isContainer: Bool) {
        self.file = file
        self.name = name
        self.isContainer = isContainer
    }
}

/// Plans and loads models within a memory budget: the one implementation behind `Engine.plan`,
/// `Engine.init` and the `ember` commands that take `--memory-budget`.
public enum ModelLoader {
    /// Opens the model `configuration` names (a container is decoded and checked here).
    public static func open(_ configuration: EngineConfiguration) throws(EngineError) -> OpenedModel {
        let name = configuration.modelName
        let decodeThreads = max(1, min(configuration.resolvedThreadCount, 4))
        do {
            switch configuration.model {
            case .gguf(let path):
                return OpenedModel(file: try GGUFFile(path: path), name: path, isContainer: false)
            case .container(let path):
                return OpenedModel(file: try ModelContainer(path: path).loadGGUF(threads: decodeThreads), name: path, isContainer: true)
            case .file(let path):
                if try isContainer(path: path) {
                    return OpenedModel(file: try ModelContainer(path: path).loadGGUF(threads: decodeThreads), name: path, isContainer: true)
                }
                return OpenedModel(file: try GGUFFile(path: path), name: path, isContainer: false)
            case .fileDescriptor(let descriptor, _):
                let bytes = try readAll(descriptor: descriptor, limit: 4, name: name)
                if bytes.count == 4, bytes != Array("GGUF".utf8) {
                    let all = try readAll(descriptor: descriptor, limit: nil, name: name)
                    return OpenedModel(file: try ModelContainer(bytes: all).loadGGUF(threads: decodeThreads), name: name, isContainer: true)
                }
                return OpenedModel(file: try GGUFFile(fileDescriptor: descriptor, name: name), name: name, isContainer: false)
            }
        } catch let error as EngineError {
            throw error
        } catch {
            throw EngineError(.unreadableModel, "\(name): \(error)")
        }
    }

    /// The memory plan for `model` under `configuration`: with a budget, the largest plan that fits
    /// (smaller steps, then a quantized KV cache, then a shorter context if `adjustsContext`, then
    /// streamed weights if allowed), or one error saying what would fit; without one, the plan asked for.
    public static func plan(_ model: OpenedModel, _ configuration: EngineConfiguration) throws(EngineError) -> MemoryPlan {
        try configuration.validate()
        if model.isContainer, configuration.weightStreaming == .always {
            throw EngineError(.invalidConfiguration,
                "\(model.name) is a compressed container, decoded into memory: weights stream only from a GGUF file; unpack it first (ember unpack)")
        }
        let context = configuration.contextLength
        let threads = configuration.resolvedThreadCount
        do {
            if let budget = configuration.memoryBudgetBytes {
                let streaming = configuration.weightStreaming
                return try MemoryPlan.fit(
                    file: model.file, budgetBytes: budget, context: context, batchSize: configuration.batchSize, threadCount: threads,
                    allowStreaming: streaming != .never && !model.isContainer, requireStreaming: streaming == .always,
                    keyValueTypes: configuration.keyValueType.map { [$0] } ?? [.f16, .q8_0, .q4_0],
                    minimumContext: configuration.adjustsContext ? min(256, context) : context,
                    sessions: configuration.concurrentRequests, interleave: configuration.interleavesWeights)
            }
            return try MemoryPlan.make(file: model.file, context: context, batchSize: configuration.batchSize, threadCount: threads,
                                       streamWeights: configuration.weightStreaming == .always, interleave: configuration.interleavesWeights,
                                       keyValueType: configuration.keyValueType ?? .f16,
                                       sessions: configuration.concurrentRequests)
        } catch {
            throw EngineError(error.kind == .memoryBudget ? .memoryBudget : .unreadableModel, error.message)
        }
    }

    /// Opens, plans and loads as planned.
    public static func load(_ configuration: EngineConfiguration) throws(EngineError) -> (LanguageModel, MemoryPlan) {
        let opened = try open(configuration)
        let plan = try plan(opened, configuration)
        return (try load(opened, plan: plan, interleave: configuration.interleavesWeights), plan)
    }

    /// Loads `model` as `plan` says (resident or streamed weights), rearranging weights for the
    /// fast kernels when `interleave`.
    public static func load(_ model: OpenedModel, plan: MemoryPlan, interleave: Bool = true) throws(EngineError) -> LanguageModel {
        do {
            return try LanguageModel(file: model.file, path: model.name,
                                     options: LoadOptions(interleave: interleave, streamWeights: plan.streamWeights))
        } catch {
            throw EngineError(.unreadableModel, "\(model.name): \(error)")
        }
    }

    /// Whether the file at `path` is a compressed container (its first four bytes are not "GGUF").
    static func isContainer(path: String) throws -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let magic = try handle.read(upToCount: 4), magic.count == 4 else { return false }
        return magic != Data("GGUF".utf8)
    }

    /// Reads the file `descriptor` from its start (`pread`): at most `limit` bytes, or all of it.
    static func readAll(descriptor: Int32, limit: Int?, name: String) throws(EngineError) -> [UInt8] {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw EngineError(.unreadableModel, "\(name): cannot read file descriptor \(descriptor): \(String(cString: strerror(errno)))")
        }
        let count = min(Int(status.st_size), limit ?? .max)
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let read = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + done, count - done, off_t(done))
            }
            if read < 0, errno == EINTR { continue }
            guard read > 0 else {
                throw EngineError(.unreadableModel, "\(name): reading file descriptor \(descriptor) failed at byte \(done) of \(count)")
            }
            done += read
        }
        return bytes
    }
}

import EmberCore
import EmberGGUF
import EmberKernels

/// Every buffer one `InferenceSession` allocates, for the dimensions of a model file: the one
/// value from which the session allocates its scratch and `MemoryPlan` counts it, so the two
/// cannot drift apart.
struct ScratchLayout: Sendable, Equatable {
    /// Rows of logits computed at once.
    static let logitGroupSize = 16
    /// Bytes of the output projection multiplied at once when weights stream.
    static let outputSliceBytes = 4 << 20

    /// Rows of the output projection multiplied at once when weights stream (whole groups of 32
    /// rows, at least 1024): about `outputSliceBytes` of weights.
    static func outputSliceRows(rowBytes: Int) -> Int {
        max(1024, outputSliceBytes / max(1, rowBytes)) / 32 * 32
    }

    /// Rows a forward batch holds.
    var batch: Int
    var contextLength: Int
    var threadCount: Int
    /// Floats of the plain block's activations (each a batch of rows; 0 for an architecture with
    /// its own forward pass, which allocates `customFloats` instead).
    var hidden: Int
    var queries: Int
    var keys: Int
    var values: Int
    var attention: Int
    var projected: Int
    var gate: Int
    var up: Int
    /// The final-normed hidden states: batch × max(embedding, heads × value length).
    var normalized: Int
    /// A group of logit rows, and its slice of the streamed output projection (0 unless streaming).
    var logits: Int
    var sliceLogits: Int
    /// The attention blocks' per-thread scratch (`ForwardBlocks.attentionFloats`).
    var attentionExtent: AttentionExtent
    /// Activation scratch of the largest matrix product.
    var matmulBytes: Int
    /// Floats of a custom forward pass's buffers.
    var customFloats: Int
    /// Bytes of the mixture-of-experts buffers (the session's, or a custom pass's).
    var expertBytes: Int

    /// The layout of a session of `file` for `contextLength` positions and batches of `batchSize`.
    init(configuration c: ModelConfiguration, file: GGUFFile, contextLength: Int, batchSize: Int, threadCount: Int,
         streamWeights: Bool) {
        let batch = max(1, min(batchSize, contextLength))
        self.batch = batch
        self.contextLength = contextLength
        self.threadCount = threadCount
        let custom = (ArchitectureRegistry.definition(for: c.architecture) as? any CustomForwardArchitecture.Type)?
            .scratch(configuration: c, file: file, batchSize: batch)
        let plain = custom == nil ? batch : 0
        let embedding = c.embeddingLength
        // A mixture-of-experts model runs no dense feed-forward (its experts have their own buffers).
        let denseFeedForward = MixtureOfExpertsBlock.traits(file: file, configuration: c) == nil ? c.feedForwardLength : 1
        hidden = plain * embedding
        queries = plain * c.headCount * c.keyLength
        keys = plain * c.keyValueHeadCount * c.keyLength
        values = plain * c.keyValueHeadCount * c.valueLength
        attention = plain * c.headCount * c.valueLength
        projected = plain * embedding
        gate = plain * denseFeedForward
        up = plain * denseFeedForward
        normalized = batch * max(embedding, custom == nil ? c.headCount * c.valueLength : 0)
        logits = Self.logitGroupSize * c.vocabularySize
        customFloats = custom?.bufferFloats ?? 0
        attentionExtent = custom?.attention
            ?? AttentionExtent(keyLength: c.keyLength, valueLength: c.valueLength, rotaryDimensionCount: c.ropeDimensionCount,
                               queryBlock: AttentionExtent.queryBlock(group: c.headCount / max(1, c.keyValueHeadCount)))
        var matmulBytes = 64
        var sliceLogits = 0
        // Expert tensors (3-D) are multiplied one expert at a time with up to a batch of tokens.
        for tensor in file.tensors where tensor.dimensions.count >= 2 && tensor.rowCount > 1 {
            let isOutput = tensor.name == "output.weight" || (tensor.name == "token_embd.weight" && file.tensor(named: "output.weight") == nil)
            matmulBytes = max(matmulBytes, Kernels.matmulScratchBytes(type: tensor.type, columns: tensor.rowLength,
                                                                      tokens: isOutput ? Self.logitGroupSize : batch))
            if isOutput && streamWeights {
                sliceLogits = Self.logitGroupSize * Self.outputSliceRows(rowBytes: tensor.byteCount / max(1, tensor.rowCount))
            }
        }
        self.matmulBytes = matmulBytes
        self.sliceLogits = sliceLogits
        expertBytes = MixtureOfExpertsBlock.byteCount(file: file, configuration: c, batchSize: batch)
    }

    /// Floats of the session's own buffers (the custom pass's and the experts' aside).
    var sessionFloats: Int {
        hidden + queries + keys + values + attention + projected + gate + up + normalized + logits + sliceLogits
            + ForwardBlocks.attentionFloats(extent: attentionExtent, contextLength: contextLength, threadCount: threadCount)
    }

    /// Bytes a thread pool of `threadCount` threads holds for its kernels (each thread's workspace).
    static func threadPoolByteCount(threadCount: Int) -> Int { threadCount * ThreadPool.workspaceBytes }

    /// Every byte of the layout, the thread pool's workspaces included.
    var byteCount: Int {
        (sessionFloats + customFloats) * MemoryLayout<Float>.size + matmulBytes + expertBytes
            + Self.threadPoolByteCount(threadCount: threadCount)
    }
}

/// What the scratch of a custom forward pass holds beyond the session's: its buffers, and the
/// widest attention it runs (the attention blocks' per-thread scratch).
struct CustomForwardScratch: Sendable, Equatable {
    var bufferFloats: Int
    var attention: AttentionExtent
}

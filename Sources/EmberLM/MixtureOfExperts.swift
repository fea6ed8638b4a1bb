import EmberCore
import EmberGGUF
import EmberKernels

/// How a mixture-of-experts feed-forward block chooses and weighs its experts (qwen3moe, …).
///
/// Each token's normalized hidden state goes through a router (`ffn_gate_inp`, one logit per
/// expert); the gating turns the logits into probabilities, the `usedExpertCount` most probable
/// experts run (each a gated feed-forward of `expertFeedForwardLength`), and their outputs are
/// summed with the chosen probabilities as weights, renormalized to sum to one when
/// `normalizesWeights`.
public struct MixtureOfExpertsTraits: Sendable, Equatable {
    /// How router logits become expert probabilities.
    public enum Gating: Sendable, Equatable {
        /// Softmax over every expert's logit (llama.cpp's `LLAMA_EXPERT_GATING_FUNC_TYPE_SOFTMAX`).
        case softmax
    }

    public var expertCount: Int
    /// Experts run per token (`expert_used_count`, "top-k").
    public var usedExpertCount: Int
    /// Rows of one expert's gate and up matrices.
    public var expertFeedForwardLength: Int
    public var gating: Gating
    /// Divide the chosen experts' probabilities by their sum (qwen3moe always does).
    public var normalizesWeights: Bool
    /// Multiplies the chosen experts' weights after normalizing; nil leaves them as they are.
    public var weightScale: Float?
    /// Each expert's gated activation: SwiGLU (qwen3moe) or GeGLU (Gemma 4).
    public var activation: ArchitectureTraits.FeedForwardActivation

    public init(expertCount: Int, usedExpertCount: Int, expertFeedForwardLength: Int, gating: Gating = .softmax,
                normalizesWeights: Bool, weightScale: Float? = nil, activation: ArchitectureTraits.FeedForwardActivation = .swiGLU) {
        self.activation = activation
        self.expertCount = expertCount
        self.usedExpertCount = usedExpertCount
        self.expertFeedForwardLength = expertFeedForwardLength
        self.gating = gating
        self.normalizesWeights = normalizesWeights
        self.weightScale = weightScale
    }

    /// Reads `<architecture>.expert_count`, `expert_used_count` and `expert_feed_forward_length`
    /// (which defaults, as in llama.cpp, to `feed_forward_length ÷ expert_used_count`).
    public static func read(configuration: ModelConfiguration, gguf: GGUFFile, gating: Gating = .softmax,
                            normalizesWeights: Bool, weightScale: Float? = nil,
                            activation: ArchitectureTraits.FeedForwardActivation = .swiGLU) throws(LanguageModelError) -> MixtureOfExpertsTraits {
        let prefix = configuration.architecture
        guard let experts = gguf.integer("\(prefix).expert_count"), (1...ModelConfiguration.Limits.expertCount).contains(experts) else {
            throw LanguageModelError(.missingMetadata, "model file is missing '\(prefix).expert_count' (a positive integer up to \(ModelConfiguration.Limits.expertCount))")
        }
        guard let used = gguf.integer("\(prefix).expert_used_count"), used > 0, used <= experts else {
            throw LanguageModelError(.missingMetadata,
                "model file is missing '\(prefix).expert_used_count' (a positive integer up to the \(experts) experts)")
        }
        let feedForward = gguf.integer("\(prefix).expert_feed_forward_length") ?? configuration.feedForwardLength / used
        guard (1...ModelConfiguration.Limits.feedForwardLength).contains(feedForward) else {
            throw LanguageModelError(.missingMetadata, "model file has no usable '\(prefix).expert_feed_forward_length'")
        }
        return MixtureOfExpertsTraits(expertCount: experts, usedExpertCount: used, expertFeedForwardLength: feedForward,
                                      gating: gating, normalizesWeights: normalizesWeights, weightScale: weightScale,
                                      activation: activation)
    }
}

/// The mixture-of-experts weights of one transformer block: the router and each expert's gate,
/// up and down matrices. An expert's matrix is a slice of the file's 3-D tensor
/// (`ffn_gate_exps.weight` is [embedding, expert feed-forward, experts] in GGUF order), so choosing
/// an expert is a pointer offset and only the chosen experts' bytes are read.
struct ExpertLayerWeights: Sendable {
    /// `ffn_gate_inp`: one row of embedding length per expert.
    var router: WeightMatrix
    var gate: [WeightMatrix]
    var up: [WeightMatrix]
    var down: [WeightMatrix]
    /// `ffn_down_exps.scale`: one factor per expert on its output (Gemma 4), or nil.
    var downScales: [Float]?

    var expertCount: Int { gate.count }

    /// Bytes of expert `index`'s three matrices (in the file's layout).
    func expertBytes(_ index: Int) -> Int {
        gate[index].byteCount + up[index].byteCount + down[index].byteCount
    }

    /// Bytes of every expert's matrices.
    var allExpertBytes: Int { (0..<expertCount).reduce(0) { $0 + expertBytes($1) } }

    /// Every matrix: the router, then each expert's gate, up and down.
    var matrices: [WeightMatrix] { [router] + gate + up + down }
}

extension WeightLoader {
    /// The mixture-of-experts weights of block `prefix` for `traits`, checking shapes and types.
    func expertLayer(prefix: String, embedding: Int, traits: MixtureOfExpertsTraits) throws(LanguageModelError) -> ExpertLayerWeights {
        let experts = traits.expertCount, feedForward = traits.expertFeedForwardLength
        return ExpertLayerWeights(
            router: try matrix(prefix + "ffn_gate_inp.weight", rows: experts, columns: embedding),
            gate: try expertMatrices(prefix + "ffn_gate_exps.weight", experts: experts, rows: feedForward, columns: embedding),
            up: try expertMatrices(prefix + "ffn_up_exps.weight", experts: experts, rows: feedForward, columns: embedding),
            down: try expertMatrices(prefix + "ffn_down_exps.weight", experts: experts, rows: embedding, columns: feedForward),
            downScales: try optionalVector(prefix + "ffn_down_exps.scale", count: experts))
    }

    /// One matrix per expert, sliced out of the 3-D tensor `name` of shape [columns, rows, experts].
    func expertMatrices(_ name: String, experts: Int, rows: Int, columns: Int) throws(LanguageModelError) -> [WeightMatrix] {
        guard let tensor = file.tensor(named: name) else {
            throw LanguageModelError(.missingTensor, "model file has no tensor '\(name)'")
        }
        guard tensor.dimensions == [columns, rows, experts] else {
            throw LanguageModelError(.tensorShape, "tensor '\(name)' has shape \(tensor.dimensions), expected [\(columns), \(rows), \(experts)]")
        }
        guard Kernels.supportsMatrixMultiply(tensor.type) else {
            throw LanguageModelError(.unsupportedTensorType, "tensor '\(name)' has type \(tensor.type), which Ember cannot multiply yet")
        }
        let data = file.tensorData(tensor)
        let expertBytes = tensor.byteCount / experts
        return (0..<experts).map { expert in
            weightMatrix("\(name)[\(expert)]", data: data + expert * expertBytes, type: tensor.type, rows: rows, columns: columns)
        }
    }
}

/// What the expert blocks of a session have read so far.
public struct ExpertStatistics: Sendable, Equatable {
    /// Bytes of expert matrices multiplied (each chosen expert's gate, up and down once per batch
    /// and layer, however many of the batch's tokens chose it; the router aside).
    public var expertBytesRead = 0
    /// Expert runs: one per (batch, layer, expert chosen by at least one of the batch's tokens).
    public var expertRuns = 0
    /// Tokens routed, counted once per layer.
    public var routedTokens = 0

    public init() {}
}

/// The mixture-of-experts feed-forward block of one session: buffers for a batch, the routing,
/// and the bytes read.
///
/// For a batch the tokens are grouped by expert, so each chosen expert's weights are read once per
/// batch and multiplied with all the tokens that chose it. Not thread-safe (owned by an
/// `InferenceSession`).
final class MixtureOfExpertsBlock {
    /// Experts whose pages are asked for ahead of the one running when weights stream.
    static let streamingLookahead = 2
    /// Experts of a layer resident at once when weights stream: the running one and the lookahead.
    static var streamedResidentExperts: Int { streamingLookahead + 1 }

    let traits: MixtureOfExpertsTraits
    let embedding: Int
    let batchSize: Int
    private(set) var statistics = ExpertStatistics()

    private let routerLogits: UnsafeMutablePointer<Float>      // batch × experts
    private let chosenExperts: UnsafeMutablePointer<Int32>     // batch × used
    private let chosenWeights: UnsafeMutablePointer<Float>     // batch × used
    private let assignments: UnsafeMutablePointer<Int32>       // experts × batch: token × used + slot
    private let assignmentCounts: UnsafeMutablePointer<Int>    // experts
    private let expertInput: UnsafeMutablePointer<Float>       // batch × embedding
    private let expertGate: UnsafeMutablePointer<Float>        // batch × expert feed-forward
    private let expertUp: UnsafeMutablePointer<Float>          // batch × expert feed-forward
    private let expertOutput: UnsafeMutablePointer<Float>      // batch × embedding
    private let slotOutputs: UnsafeMutablePointer<Float>       // batch × used × embedding

    init(traits: MixtureOfExpertsTraits, embedding: Int, batchSize: Int) {
        self.traits = traits
        self.embedding = embedding
        self.batchSize = batchSize
        let experts = traits.expertCount, used = traits.usedExpertCount, feedForward = traits.expertFeedForwardLength
        routerLogits = .allocate(capacity: batchSize * experts)
        chosenExperts = .allocate(capacity: batchSize * used)
        chosenWeights = .allocate(capacity: batchSize * used)
        assignments = .allocate(capacity: experts * batchSize)
        assignmentCounts = .allocate(capacity: experts)
        expertInput = .allocate(capacity: batchSize * embedding)
        expertGate = .allocate(capacity: batchSize * feedForward)
        expertUp = .allocate(capacity: batchSize * feedForward)
        expertOutput = .allocate(capacity: batchSize * embedding)
        slotOutputs = .allocate(capacity: batchSize * used * embedding)
    }

    deinit {
        routerLogits.deallocate()
        chosenExperts.deallocate()
        chosenWeights.deallocate()
        assignments.deallocate()
        assignmentCounts.deallocate()
        for pointer in [expertInput, expertGate, expertUp, expertOutput, slotOutputs] { pointer.deallocate() }
    }

    /// Bytes `init` allocates for these dimensions.
    static func byteCount(traits: MixtureOfExpertsTraits, embedding: Int, batchSize: Int) -> Int {
        let experts = traits.expertCount, used = traits.usedExpertCount, feedForward = traits.expertFeedForwardLength
        let floats = batchSize * experts + batchSize * used + 2 * batchSize * embedding + 2 * batchSize * feedForward
            + batchSize * used * embedding
        return floats * MemoryLayout<Float>.size + (batchSize * used + experts * batchSize) * MemoryLayout<Int32>.size
            + experts * MemoryLayout<Int>.size
    }

    /// Bytes a session of `file` allocates for its expert blocks, 0 for a dense model. Reads the
    /// dimensions from the file (the first `ffn_gate_exps` tensor and `expert_used_count`).
    static func byteCount(file: GGUFFile, configuration: ModelConfiguration, batchSize: Int) -> Int {
        guard let traits = traits(file: file, configuration: configuration) else { return 0 }
        return byteCount(traits: traits, embedding: configuration.embeddingLength, batchSize: batchSize)
    }

    /// Expert dimensions of `file` from its tensors, nil when it has no experts.
    static func traits(file: GGUFFile, configuration: ModelConfiguration) -> MixtureOfExpertsTraits? {
        guard let gate = file.tensors.first(where: { $0.name.hasSuffix(".ffn_gate_exps.weight") }), gate.dimensions.count == 3 else {
            return nil
        }
        let used = file.integer("\(configuration.architecture).expert_used_count") ?? 1
        return MixtureOfExpertsTraits(expertCount: gate.dimensions[2], usedExpertCount: min(max(1, used), gate.dimensions[2]),
                                      expertFeedForwardLength: gate.dimensions[1], normalizesWeights: true)
    }

    func resetStatistics() { statistics = ExpertStatistics() }

    /// The block's output for `tokens` normalized hidden states in `input` (rows of embedding
    /// length), written to `output`: Σ over each token's chosen experts of weight × down(silu(gate x) · up x)
    /// (GELU for a GeGLU block, × the expert's down scale when it has one). The router reads
    /// `routerInput` when given (Gemma 4 routes on its own normalization of the stream), else `input`.
    ///
    /// `multiply` is the session's matrix multiplication (rearranged, streaming-order or plain
    /// kernels); its last argument says whether the matrix is an expert's (llama.cpp multiplies
    /// experts with `mul_mat_id`, whose F32 dot products add up in another order than `mul_mat`'s). With `streamsExperts`, each chosen expert's pages (when its matrices stream) are prefetched a little ahead of
    /// its run and released after it, so only the routed experts of the layer are brought in.
    func run(_ weights: ExpertLayerWeights, input: UnsafePointer<Float>, routerInput: UnsafePointer<Float>? = nil, tokens: Int,
             output: UnsafeMutablePointer<Float>, streamsExperts: Bool,
             multiply: (WeightMatrix, UnsafePointer<Float>, Int, UnsafeMutablePointer<Float>, Bool) -> Void) {
        precondition(tokens <= batchSize, "batch of \(tokens) tokens exceeds the expert buffers of \(batchSize)")
        let experts = traits.expertCount, used = traits.usedExpertCount, feedForward = traits.expertFeedForwardLength

        // Route: logits, probabilities, the most probable experts and their weights.
        multiply(weights.router, routerInput ?? input, tokens, routerLogits, false)
        for token in 0..<tokens {
            route(token: token)
        }

        // Group the (token, slot) pairs by expert.
        for expert in 0..<experts { assignmentCounts[expert] = 0 }
        for token in 0..<tokens {
            for slot in 0..<used {
                let expert = Int(chosenExperts[token * used + slot])
                assignments[expert * batchSize + assignmentCounts[expert]] = Int32(token * used + slot)
                assignmentCounts[expert] += 1
            }
        }
        let order = (0..<experts).filter { assignmentCounts[$0] > 0 }

        func prefetch(_ position: Int) {
            guard streamsExperts, position < order.count else { return }
            let expert = order[position]
            for matrix in [weights.gate[expert], weights.up[expert], weights.down[expert]] { matrix.prefetch() }
        }
        for position in 0..<Self.streamingLookahead { prefetch(position) }

        // Run each chosen expert once over the tokens that chose it.
        for (position, expert) in order.enumerated() {
            prefetch(position + Self.streamingLookahead)
            let count = assignmentCounts[expert]
            let list = assignments + expert * batchSize
            for index in 0..<count {
                let token = Int(list[index]) / used
                (expertInput + index * embedding).update(from: input + token * embedding, count: embedding)
            }
            multiply(weights.gate[expert], expertInput, count, expertGate, true)
            multiply(weights.up[expert], expertInput, count, expertUp, true)
            switch traits.activation {
            case .swiGLU: Operations.swiGLU(gate: expertGate, up: expertUp, rows: count, width: feedForward)
            case .geGLU: Operations.geGLU(gate: expertGate, up: expertUp, count: count * feedForward)
            }
            multiply(weights.down[expert], expertGate, count, expertOutput, true)
            let downScale = weights.downScales?[expert]
            for index in 0..<count {
                let pair = Int(list[index])
                let weight = chosenWeights[pair]
                let source = expertOutput + index * embedding
                let destination = slotOutputs + pair * embedding
                if let downScale {
                    // Scaled first, then weighted: llama.cpp's two multiplications in its order.
                    for i in 0..<embedding { destination[i] = (source[i] * downScale) * weight }
                } else {
                    for i in 0..<embedding { destination[i] = source[i] * weight }
                }
            }
            statistics.expertBytesRead += weights.expertBytes(expert)
            statistics.expertRuns += 1
            if streamsExperts {
                for matrix in [weights.gate[expert], weights.up[expert], weights.down[expert]] { matrix.releasePages() }
            }
        }
        statistics.routedTokens += tokens

        // Sum each token's weighted expert outputs in slot order (most probable first), as llama.cpp does.
        for token in 0..<tokens {
            let destination = output + token * embedding
            destination.update(from: slotOutputs + token * used * embedding, count: embedding)
            for slot in 1..<max(1, used) {
                Operations.add(slotOutputs + (token * used + slot) * embedding, into: destination, count: embedding)
            }
        }
    }

    /// Chooses token `token`'s experts from its router logits: probabilities by the gating, the
    /// `usedExpertCount` largest in descending order, then renormalized and scaled.
    private func route(token: Int) {
        let experts = traits.expertCount, used = traits.usedExpertCount
        let probabilities = routerLogits + token * experts
        switch traits.gating {
        case .softmax: Operations.softmax(probabilities, count: experts)
        }
        let chosen = chosenExperts + token * used
        let weights = chosenWeights + token * used
        for slot in 0..<used {
            var best = -1
            for expert in 0..<experts {
                if (0..<slot).contains(where: { chosen[$0] == Int32(expert) }) { continue }
                if best < 0 || probabilities[expert] > probabilities[best] { best = expert }
            }
            chosen[slot] = Int32(best)
            weights[slot] = probabilities[best]
        }
        if traits.normalizesWeights {
            // Summed in double precision like ggml's row sums, then clamped (as llama.cpp does) to
            // the smallest normal half before dividing.
            var total: Double = 0
            for slot in 0..<used { total += Double(weights[slot]) }
            let sum = max(Float(total), 6.103515625e-5)
            for slot in 0..<used { weights[slot] /= sum }
        }
        if let scale = traits.weightScale, scale != 0, scale != 1 {
            for slot in 0..<used { weights[slot] *= scale }
        }
    }
}

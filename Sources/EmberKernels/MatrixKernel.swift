import EmberCore

/// How one weight matrix is multiplied, decided once when the model loads from its format's row
/// (`QuantizedFormat`) and the load options, so that a forward pass only calls `multiply`: the
/// format's row kernels over the file's layout, the same rows summed in the interleaved kernels'
/// order (weights that stream from the file keep the tokens of a rearranged copy), or the
/// rearranged copy itself.
public struct MatrixKernel: Sendable {
    enum Path: Sendable {
        /// The file's rows with the format's row loop.
        case rows
        /// The file's rows with dot products that add up as the interleaved kernels do.
        case sequential(Kernels.DotKernel)
        /// A copy rearranged at load.
        case interleaved(InterleavedWeights)
    }

    /// The weights' type in the file.
    public let type: TensorType
    let path: Path

    /// The kernel of a matrix of `type` read from the file's layout: in the interleaved kernels'
    /// order when `inInterleavedOrder` and the format has such kernels (`QuantizedFormat.sequentialDot`),
    /// Q8_0 in llama.cpp's order when `llamaOrder`.
    public init(type: TensorType, inInterleavedOrder: Bool = false, llamaOrder: Bool = true) {
        self.type = type
        if inInterleavedOrder, let dot = QuantizedFormat.format(type)?.sequentialDot?(llamaOrder) {
            path = .sequential(dot)
        } else {
            path = .rows
        }
    }

    /// The kernel of weights rearranged at load (`InterleavedWeights`).
    public init(interleaved: InterleavedWeights) {
        type = interleaved.type
        path = .interleaved(interleaved)
    }

    /// The rearranged copy, when the matrix has one.
    public var interleaved: InterleavedWeights? {
        if case .interleaved(let weights) = path { return weights }
        return nil
    }

    /// `output[t * rows + r] = dot(weight row r, input row t)` for `tokens` rows of `input`; `weights`
    /// are the file's `rows` rows of `columns` (unread when the matrix is rearranged). `rowByRow`:
    /// see `Kernels.matmul`.
    @inline(__always)
    public func multiply(weights: UnsafeRawPointer, rows: Int, columns: Int, input: UnsafePointer<Float>, tokens: Int,
                         output: UnsafeMutablePointer<Float>, scratch: UnsafeMutableRawPointer, pool: ThreadPool,
                         rowByRow: Bool = false) {
        switch path {
        case .interleaved(let interleaved):
            Kernels.matmul(interleaved: interleaved, input: input, tokens: tokens, output: output, scratch: scratch, pool: pool)
        case .sequential(let dot):
            let activationType = Kernels.activationType(for: type)
            Kernels.quantizeActivations(input, tokens: tokens, columns: columns, as: activationType, into: scratch, pool: pool)
            Kernels.multiplyRows(dot, weights, type.byteCount(elements: columns)!, rows, columns, UnsafeRawPointer(scratch),
                                 activationType.byteCount(elements: columns)!, tokens, output, pool)
        case .rows:
            Kernels.matmul(weights: weights, type: type, rows: rows, columns: columns, input: input, tokens: tokens, output: output,
                           scratch: scratch, pool: pool, rowByRow: rowByRow)
        }
    }
}

#if canImport(CBLAS)
import CBLAS
#elseif canImport(Accelerate)
import Accelerate
#endif
import EmberCore
import EmberKernels

/// Prompt batches over unquantized (F16, F32) weights through the platform's BLAS `cblas_sgemm`
/// (OpenBLAS on Linux, Accelerate on Apple platforms), as llama.cpp's BLAS backend multiplies them:
/// weights widened to F32, activations kept in F32.
///
/// A `FloatBatchKernel` a program installs (`ember bench --blas`); BENCHMARKS.md records what it
/// measured against Ember's own kernels. Each pool thread takes a contiguous range of weight rows
/// and multiplies it in tiles that fit its workspace, with BLAS told to start no threads of its own,
/// so the pool's thread count (and a scheduler's choice of it) still holds and nothing is allocated
/// per call. The sums are BLAS's, not llama.cpp's CPU order: logits differ from Ember's kernels in
/// the last bits.
public enum BLASMatrixMultiply {
    /// Whether this build links a BLAS library.
    public static var isAvailable: Bool {
        #if canImport(CBLAS) || canImport(Accelerate)
        return true
        #else
        return false
        #endif
    }

    /// The library and the kernels it picked for this CPU (OpenBLAS: "OpenBLAS 0.3.21 … SkylakeX"; it
    /// falls back to generic SSE3 "Prescott" kernels on a CPU model it does not recognise unless the
    /// environment sets OPENBLAS_CORETYPE); nil without a BLAS library.
    public static var libraryDescription: String? {
        #if canImport(CBLAS)
        let configuration = openblas_get_config().map { String(cString: $0) } ?? "OpenBLAS"
        let core = openblas_get_corename().map { String(cString: $0) } ?? "unknown"
        return "\(configuration.split(separator: " ").joined(separator: " ")), core \(core)"
        #elseif canImport(Accelerate)
        return "Accelerate"
        #else
        return nil
        #endif
    }

    /// The fewest tokens a batch must have to go to BLAS (llama.cpp's BLAS backend: 32).
    public static let minimumTokens = 32

    /// The kernel to install as `FloatBatchKernel.installed`; nil without a BLAS library.
    public static var kernel: FloatBatchKernel? {
        guard isAvailable else { return nil }
        #if canImport(CBLAS)
        openblas_set_num_threads(1)
        #endif
        return FloatBatchKernel(minimumTokens: minimumTokens) { weights, type, rows, columns, input, tokens, output, pool in
            multiply(weights: weights, type: type, rows: rows, columns: columns, input: input, tokens: tokens, output: output, pool: pool)
        }
    }

    /// Weight rows a tile of F16 weights widened to F32 holds in a pool workspace.
    static func tileRows(columns: Int) -> Int { max(1, ThreadPool.workspaceBytes / (columns * MemoryLayout<Float>.stride)) }

    /// `output[t * rows + r] = Σ_c weights[r][c] · input[t][c]` for every token t and row r.
    public static func multiply(weights: UnsafeRawPointer, type: TensorType, rows: Int, columns: Int,
                                input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>, pool: ThreadPool) {
        precondition(type == .f16 || type == .f32, "BLAS multiplies F16 and F32 weights, not \(type)")
        precondition(isAvailable, "this build links no BLAS library")
        pool.parallelFor(rows) { range, thread in
            if type == .f32 {
                multiplyRows(weights.assumingMemoryBound(to: Float.self) + range.lowerBound * columns, count: range.count,
                             firstRow: range.lowerBound, rows: rows, columns: columns, input: input, tokens: tokens, output: output)
                return
            }
            let tile = pool.workspace(thread).assumingMemoryBound(to: Float.self)
            let step = tileRows(columns: columns)
            var row = range.lowerBound
            while row < range.upperBound {
                let count = min(step, range.upperBound - row)
                Kernels.dequantize(.f16, source: weights + row * columns * MemoryLayout<Float16>.stride, into: tile, count: count * columns)
                multiplyRows(UnsafePointer(tile), count: count, firstRow: row, rows: rows, columns: columns, input: input,
                             tokens: tokens, output: output)
                row += count
            }
        }
    }

    /// `count` F32 weight rows starting at row `firstRow` of the output.
    private static func multiplyRows(_ weights: UnsafePointer<Float>, count: Int, firstRow: Int, rows: Int, columns: Int,
                                     input: UnsafePointer<Float>, tokens: Int, output: UnsafeMutablePointer<Float>) {
        #if canImport(CBLAS) || canImport(Accelerate)
        // Row-major: output[tokens × count] (row stride `rows`) = input[tokens × columns] · weightsᵀ.
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(count), Int32(columns), 1,
                    input, Int32(columns), weights, Int32(columns), 0, output + firstRow, Int32(rows))
        #endif
    }
}

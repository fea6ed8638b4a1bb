import EmberCore
import Synchronization

/// A matrix product for prompt batches over unquantized (F16, F32) weights that another module
/// provides — EmberBLAS's `BLASMatrixMultiply` (OpenBLAS on Linux, Accelerate on Apple platforms)
/// — and a program installs (`ember bench --blas`). The library modules link no BLAS themselves: an
/// app that wants it links EmberBLAS and installs it. Without one, `Kernels.matmul` uses its own kernels.
public struct FloatBatchKernel: Sendable {
    /// The fewest tokens a batch must have to go to this kernel.
    public var minimumTokens: Int
    /// `output[t * rows + r] = Σ_c weights[r][c] · input[t][c]`, weights of type F16 or F32.
    public var multiply: @Sendable (_ weights: UnsafeRawPointer, _ type: TensorType, _ rows: Int, _ columns: Int,
                                    _ input: UnsafePointer<Float>, _ tokens: Int, _ output: UnsafeMutablePointer<Float>,
                                    _ pool: ThreadPool) -> Void

    public init(minimumTokens: Int,
                multiply: @escaping @Sendable (UnsafeRawPointer, TensorType, Int, Int, UnsafePointer<Float>, Int,
                                               UnsafeMutablePointer<Float>, ThreadPool) -> Void) {
        self.minimumTokens = minimumTokens
        self.multiply = multiply
    }

    private static let installedKernel = Mutex<FloatBatchKernel?>(nil)

    /// The installed kernel (nil: Ember's own).
    public static var installed: FloatBatchKernel? {
        get { installedKernel.withLock { $0 } }
        set { installedKernel.withLock { $0 = newValue } }
    }

    /// The installed kernel if it takes a product of `tokens` rows over `type` weights.
    static func kernel(for type: TensorType, tokens: Int) -> FloatBatchKernel? {
        guard type == .f16 || type == .f32, tokens > 1 else { return nil }
        guard let kernel = installed, tokens >= kernel.minimumTokens else { return nil }
        return kernel
    }
}

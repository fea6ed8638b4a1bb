import CIntegerKernels
import Synchronization

/// The implementation that multiplies prompt batches (`InterleavedWeights.tokenLaneMinimum` tokens
/// or more) by interleaved weights: Q4_1 and Q5_0 decoded (tokens in the vector lanes,
/// `TokenLaneKernels.swift`), and Q4_K and Q6_K (`Q4KInterleaved.swift`, `Q6KInterleaved.swift`;
/// tokens in the lanes with AVX-512 VNNI, tiled Swift kernels otherwise). With AVX-512 VNNI it also
/// multiplies single tokens (decode steps) over Q4_1's, Q4_K's and Q8_0's layouts when the CPU has AVX-512 VBMI byte permutes
/// (`integer_kernels_one_token_avx512_vnni`; Ice Lake, Sapphire Rapids and Zen 4 on have them).
///
/// Both give the same bits: the block sums are exact integers either way, and the floating-point
/// steps after them are the same operations in the same order.
public enum PromptKernel: String, Sendable, CaseIterable {
    /// The Swift kernels: pairs of byte products (`vpmaddubsw` on x86), on every CPU.
    case portable
    /// AVX-512 VNNI (CIntegerKernels): `vpdpbusd` sums four byte products into each 32-bit lane,
    /// on x86-64 CPUs that have it.
    case avx512VNNI = "avx512-vnni"

    /// The fastest kernel this CPU runs, detected once from CPUID.
    public static let detected: PromptKernel = integer_kernels_cpu_has_avx512_vnni() != 0 ? .avx512VNNI : .portable

    /// Whether this CPU runs `self`.
    public var isAvailable: Bool { self == .portable || Self.detected == .avx512VNNI }

    private static let selection = Atomic<Int>(-1)

    /// The kernel `Kernels.matmul(interleaved:)` uses when not told one: `detected` unless set
    /// (`ember bench --prompt-kernel` sets it to measure one against the other).
    public static var current: PromptKernel {
        get {
            let index = selection.load(ordering: .relaxed)
            return index < 0 ? detected : allCases[index]
        }
        set {
            precondition(newValue.isAvailable, "this CPU cannot run the \(newValue.rawValue) kernels")
            selection.store(allCases.firstIndex(of: newValue)!, ordering: .relaxed)
        }
    }
}

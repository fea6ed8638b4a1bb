import EmberKernels
import Foundation

/// Element-wise and row-wise operations of the transformer, written as plain loops that the
/// compiler vectorizes. Each follows ggml's arithmetic (accumulation width, order of rounding)
/// so results track llama.cpp's.
enum Operations {
    /// `output[i] = input[i] / sqrt(mean(input²) + epsilon) * weight[i]`, as ggml's `rms_norm`
    /// computes it: each square rounded to single precision and added to a double-precision sum
    /// in order (a short row: the sequential double sum costs nothing measurable).
    @inline(__always)
    static func rmsNorm(_ input: UnsafePointer<Float>, weight: UnsafePointer<Float>?, output: UnsafeMutablePointer<Float>,
                        count: Int, epsilon: Float) {
        var sum: Double = 0
        for i in 0..<count { sum += Double(input[i] * input[i]) }
        let scale = 1 / (Float(sum / Double(count)) + epsilon).squareRoot()
        if let weight {
            for i in 0..<count { output[i] = input[i] * scale * weight[i] }
        } else {
            for i in 0..<count { output[i] = input[i] * scale }
        }
    }

    /// Σ a[i]·b[i] in 16 single-precision lanes of fused multiply-adds, the lanes added in
    /// halves (ggml's tinyBLAS order), then the elements past the last 16 one by one.
    @inline(__always)
    static func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Float {
        var accumulator = SIMD16<Float>.zero
        var i = 0
        while i + 16 <= count {
            accumulator.addProduct(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD16<Float>.self),
                                   UnsafeRawPointer(b + i).loadUnaligned(as: SIMD16<Float>.self))
            i += 16
        }
        var sum = ElementwiseKernels.sumInHalves(accumulator)
        while i < count {
            sum += a[i] * b[i]
            i += 1
        }
        return sum
    }

    /// `values[i] += addend[i]`.
    @inline(__always)
    static func add(_ addend: UnsafePointer<Float>, into values: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { values[i] += addend[i] }
    }

    /// `values[i] *= factor`.
    @inline(__always)
    static func scale(_ values: UnsafeMutablePointer<Float>, by factor: Float, count: Int) {
        for i in 0..<count { values[i] *= factor }
    }

    /// SwiGLU over `rows` rows of `width`: `gate[i] = silu(gate[i]) * up[i]`, silu(x) = x / (1 + e^(-x)),
    /// row by row as ggml computes it (its vector exponential for each 16 values, `expf` for the
    /// rest of a row).
    @inline(__always)
    static func swiGLU(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, rows: Int, width: Int) {
        for row in 0..<rows {
            ElementwiseKernels.swiGLU(gate + row * width, multipliers: up + row * width, count: width, expf: { expf($0) })
        }
    }

    /// GeGLU with the tanh approximation of GELU: `gate[i] = gelu(gate[i]) * up[i]`.
    ///
    /// Like ggml's CPU backend (`GGML_GELU_FP16`), GELU is read from a table indexed by the input
    /// rounded to half precision, holding results rounded to half precision; below -10 it is 0 and
    /// above 10 the identity.
    @inline(__always)
    static func geGLU(gate: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, count: Int) {
        GELUTable.shared.values.withUnsafeBufferPointer { table in
            for i in 0..<count {
                let x = gate[i]
                let activated: Float
                if x <= -10 {
                    activated = 0
                } else if x >= 10 {
                    activated = x
                } else {
                    activated = table[Int(Float16(x).bitPattern)]
                }
                gate[i] = activated * up[i]
            }
        }
    }

    /// GELU, tanh approximation, as ggml's `ggml_gelu_f32` is compiled on x86-64 (GCC fuses
    /// `1 + a·x·x` into one multiply-add; that gives ggml's half-precision table entry for entry).
    @inline(__always)
    static func gelu(_ x: Float) -> Float {
        let coefficientA: Float = 0.044715
        let sqrtTwoOverPi: Float = 0.79788456080286535587989211986876
        return 0.5 * x * (1 + tanhf(sqrtTwoOverPi * x * Float(1).addingProduct(coefficientA * x, x)))
    }

    /// Rounds each value to half precision and back, as ggml does when it converts an operand to F16.
    @inline(__always)
    static func roundToHalf(_ values: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { values[i] = Float(Float16(values[i])) }
    }

    /// Softmax in place over `count` values, as ggml's `soft_max` computes it: e^(x − max) with its
    /// vector exponential for each 16 values, each 16 summed in halves and added to a
    /// double-precision sum, the values past the last 16 with `expf`, then all scaled by the
    /// single-precision reciprocal of the sum.
    @inline(__always)
    static func softmax(_ values: UnsafeMutablePointer<Float>, count: Int) {
        let maximum = largest(values, count: count)
        var sum: Double = 0
        var i = 0
        while i + 16 <= count {
            sum += exponentiateBlock(values + i, maximum: maximum)
            i += 16
        }
        while i < count {
            let e = expf(values[i] - maximum)
            values[i] = e
            sum += Double(e)
            i += 1
        }
        let inverse = Float(1 / sum)
        for i in 0..<count { values[i] *= inverse }
    }

    /// Softmax of attention scores over the visible cells `firstCell ..< firstCell + count` of a row
    /// of KV cells, as ggml computes it over its whole row (a multiple of 16 cells) with the masked
    /// cells at −∞: blocks of 16 start at cell 0, and a masked cell adds an exact zero, so each
    /// partial block is computed with its hidden lanes at −∞.
    @inline(__always)
    static func attentionSoftmax(_ values: UnsafeMutablePointer<Float>, count: Int, firstCell: Int) {
        let maximum = largest(values, count: count)
        var sum: Double = 0
        var i = 0
        var lead = firstCell % 16
        while i < count {
            let visible = min(16 - lead, count - i)
            if lead == 0 && visible == 16 {
                sum += exponentiateBlock(values + i, maximum: maximum)
            } else {
                // Through memory: a lane picked by a variable index costs a compare and a blend.
                var block = SIMD16<Float>(repeating: -.infinity)
                withUnsafeMutableBytes(of: &block) { raw in
                    let lanes = raw.baseAddress!.assumingMemoryBound(to: Float.self) + lead
                    for j in 0..<visible { lanes[j] = values[i + j] - maximum }
                }
                var exponentials = ElementwiseKernels.exponential(block)
                withUnsafeBytes(of: &exponentials) { raw in
                    let lanes = raw.baseAddress!.assumingMemoryBound(to: Float.self) + lead
                    for j in 0..<visible { values[i + j] = lanes[j] }
                }
                sum += Double(ElementwiseKernels.sumInHalves(exponentials))
            }
            i += visible
            lead = 0
        }
        let inverse = Float(1 / sum)
        for i in 0..<count { values[i] *= inverse }
    }

    /// The largest of `count` values (−∞ for none), sixteen lanes at a time: the maximum does not
    /// depend on the order it is taken in.
    @inline(__always)
    static func largest(_ values: UnsafePointer<Float>, count: Int) -> Float {
        // A compare and a blend per step (`pointwiseMax` and `max()` go lane by lane, through
        // IEEE `maximum`); like the scalar loop, a NaN is never larger.
        var lanes = SIMD16<Float>(repeating: -.infinity)
        var i = 0
        while i + 16 <= count {
            let block = UnsafeRawPointer(values + i).loadUnaligned(as: SIMD16<Float>.self)
            lanes.replace(with: block, where: block .> lanes)
            i += 16
        }
        var eight = lanes.lowHalf
        eight.replace(with: lanes.highHalf, where: lanes.highHalf .> eight)
        var four = eight.lowHalf
        four.replace(with: eight.highHalf, where: eight.highHalf .> four)
        var maximum = -Float.infinity
        for lane in 0..<4 where four[lane] > maximum { maximum = four[lane] }
        while i < count {
            if values[i] > maximum { maximum = values[i] }
            i += 1
        }
        return maximum
    }

    /// e^(x − maximum) of 16 values in place; returns their sum in halves, widened.
    @inline(__always)
    private static func exponentiateBlock(_ values: UnsafeMutablePointer<Float>, maximum: Float) -> Double {
        let block = UnsafeRawPointer(values).loadUnaligned(as: SIMD16<Float>.self) - maximum
        let exponentials = ElementwiseKernels.exponential(block)
        UnsafeMutableRawPointer(values).storeBytes(of: exponentials, as: SIMD16<Float>.self)
        return Double(ElementwiseKernels.sumInHalves(exponentials))
    }
}

extension Operations {
    /// Final-logit softcapping: `cap · tanh(x / cap)`.
    static func softcap(_ values: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
        let inverse = 1 / cap
        for i in 0..<count { values[i] = tanhf(values[i] * inverse) * cap }
    }
}

/// How rotary position embedding pairs the dimensions of a head.
public enum RotaryLayout: Sendable, Equatable {
    /// Adjacent pairs `(x[2i], x[2i+1])` — llama.cpp's "normal" RoPE (llama, mistral).
    case adjacentPairs
    /// Pairs `(x[i], x[i + n/2])` — llama.cpp's "NeoX" RoPE (gemma, qwen, phi3).
    case splitHalves
}

/// Cosine and sine tables of rotary position embedding for one frequency base, with llama.cpp's
/// context extension: linear frequency scaling, YaRN's blend and magnitude, per-dimension
/// frequency factors (LongRoPE, Llama 3) and an overall magnitude factor.
struct RotaryEmbedding: Sendable {
    let dimensionCount: Int
    let base: Float
    let layout: RotaryLayout
    var scaling: RopeScaling = .none
    /// Angles of pair i are divided by `frequencyFactors[i]` (nil: 1).
    var frequencyFactors: [Float]? = nil

    /// YaRN's correction range [low, high] of pair indexes, as ggml computes it.
    private var correctionDimensions: (low: Float, high: Float) {
        guard scaling.extrapolationFactor != 0 else { return (0, 0) }
        let original = Float(scaling.originalContextLength)
        func dimension(_ rotations: Float) -> Float {
            Float(dimensionCount) * logf(original / (rotations * 2 * Float.pi)) / (2 * logf(base))
        }
        let low = max(0, floorf(dimension(scaling.betaFast)))
        let high = min(Float(dimensionCount - 1), ceilf(dimension(scaling.betaSlow)))
        return (low, high)
    }

    /// Fills `cosines` and `sines` (dimensionCount / 2 each) for `position`.
    /// Angles follow ggml: theta_i = position * base^(-2i/n), stepped multiplicatively in single precision.
    func tables(position: Int, cosines: UnsafeMutablePointer<Float>, sines: UnsafeMutablePointer<Float>) {
        let pairCount = dimensionCount / 2
        let thetaScale = powf(base, -2 / Float(dimensionCount))
        let frequencyScale = scaling.frequencyScale
        let extrapolation = scaling.extrapolationFactor
        let magnitude = scaling.magnitudeScale
        let correction = correctionDimensions
        var theta = Float(position)
        for pair in 0..<pairCount {
            let extrapolated = theta / (frequencyFactors?[pair] ?? 1)
            let interpolated = frequencyScale * extrapolated
            var angle = interpolated
            if extrapolation != 0 {
                let ramp = 1 - min(1, max(0, (Float(pair) - correction.low) / max(0.001, correction.high - correction.low)))
                let mix = ramp * extrapolation
                angle = interpolated * (1 - mix) + extrapolated * mix
            }
            cosines[pair] = cosf(angle) * magnitude
            sines[pair] = sinf(angle) * magnitude
            theta *= thetaScale
        }
    }

    /// Rotates `headCount` heads of `headLength` floats in place by the angles of `tables`:
    /// (x0·cos − x1·sin, x0·sin + x1·cos), each with its first product fused into the sum as GCC
    /// compiles ggml's `rotate_pairs` on x86-64 (contraction on by default), so the results match.
    func rotate(_ heads: UnsafeMutablePointer<Float>, headCount: Int, headLength: Int,
                cosines: UnsafePointer<Float>, sines: UnsafePointer<Float>) {
        let pairCount = dimensionCount / 2
        for head in 0..<headCount {
            let vector = heads + head * headLength
            switch layout {
            case .adjacentPairs:
                for pair in 0..<pairCount {
                    let x0 = vector[2 * pair], x1 = vector[2 * pair + 1]
                    vector[2 * pair] = (-(x1 * sines[pair])).addingProduct(x0, cosines[pair])
                    vector[2 * pair + 1] = (x1 * cosines[pair]).addingProduct(x0, sines[pair])
                }
            case .splitHalves:
                for pair in 0..<pairCount {
                    let x0 = vector[pair], x1 = vector[pair + pairCount]
                    vector[pair] = (-(x1 * sines[pair])).addingProduct(x0, cosines[pair])
                    vector[pair + pairCount] = (x1 * cosines[pair]).addingProduct(x0, sines[pair])
                }
            }
        }
    }
}

/// GELU of every half-precision value, rounded to half precision (stored widened to Float).
final class GELUTable: Sendable {
    static let shared = GELUTable()
    let values: [Float]

    private init() {
        values = (0..<65536).map { bits in
            let x = Float(Float16(bitPattern: UInt16(bits)))
            return x.isFinite ? Float(Float16(Operations.gelu(x))) : 0
        }
    }
}

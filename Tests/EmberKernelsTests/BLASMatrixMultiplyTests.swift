import EmberBLAS
import EmberCore
import EmberKernels
import Testing

/// The BLAS path for prompt batches over F16/F32 weights (`BLASMatrixMultiply`), against products
/// summed in double precision: rows split across threads and, for F16, across workspace tiles.
struct BLASMatrixMultiplyTests {
    @Test("BLAS prompt batches equal the exact products", arguments: [TensorType.f16, .f32], [1, 2])
    func matchesExactProducts(type: TensorType, threads: Int) throws {
        try #require(BLASMatrixMultiply.isAvailable, "this build links no BLAS library")
        var random = KernelRandom(state: 91 &+ UInt64(threads))
        // 300 rows of 512 columns: F16 rows widen in tiles of 96 (a 192 KiB workspace), so a
        // thread's range ends inside a tile.
        let rows = 300, columns = 512, tokens = BLASMatrixMultiply.minimumTokens + 7
        let values = random.floats(rows * columns)
        let weights: [UInt8] = type == .f16 ? values.map { Float16($0) }.withUnsafeBytes { Array($0) } : values.withUnsafeBytes { Array($0) }
        let widened: [Float] = type == .f16 ? values.map { Float(Float16($0)) } : values
        let input = random.floats(tokens * columns)
        let pool = ThreadPool(threadCount: threads)
        var output = [Float](repeating: .nan, count: rows * tokens)
        weights.withUnsafeBytes { w in
            input.withUnsafeBufferPointer { x in
                output.withUnsafeMutableBufferPointer { y in
                    BLASMatrixMultiply.multiply(weights: w.baseAddress!, type: type, rows: rows, columns: columns, input: x.baseAddress!,
                                                tokens: tokens, output: y.baseAddress!, pool: pool)
                }
            }
        }
        for token in 0..<tokens {
            for row in 0..<rows {
                var exact = 0.0, magnitude = 0.0
                for column in 0..<columns {
                    let product = Double(widened[row * columns + column]) * Double(input[token * columns + column])
                    exact += product
                    magnitude += abs(product)
                }
                let got = Double(output[token * rows + row])
                #expect(abs(got - exact) <= 1e-5 * max(magnitude, 1), "\(type) row \(row) token \(token): \(got) vs \(exact)")
            }
        }
    }

    @Test("Only F16/F32 batches of the kernel's minimum size or more go to an installed float batch kernel")
    func installedKernelTakesOnlyLargeFloatBatches() throws {
        let kernel = try #require(BLASMatrixMultiply.kernel, "this build links no BLAS library")
        #expect(kernel.minimumTokens == BLASMatrixMultiply.minimumTokens)
        // Kernels.matmul asks FloatBatchKernel.kernel(for:tokens:); nothing is installed in the tests.
        #expect(FloatBatchKernel.installed == nil)
    }
}

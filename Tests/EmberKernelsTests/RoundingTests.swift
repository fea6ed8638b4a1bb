@testable import EmberKernels
import Testing

/// The trap-free rounding the activation quantizers use equals Swift's round-half-to-even on every
/// value they can meet (|x| ≤ 127.5), ties included.
@Suite struct RoundingTests {
    @Test func matchesRoundHalfToEven() {
        var values: [Float] = (-255...255).map { Float($0) / 2 }  // every tie from -127.5 to 127.5
        var random = KernelRandom(state: 7)
        values += random.floats(10_000, scale: 127)
        values += [0, -0.0, 0.49999997, -0.49999997, 126.50001, Float.leastNonzeroMagnitude]
        for value in values {
            #expect(VectorKernels.roundedToNearestEven(value) == Int32(value.rounded(.toNearestOrEven)), "\(value)")
        }
    }
}

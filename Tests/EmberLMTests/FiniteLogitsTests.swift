@testable import EmberLM
import Testing

/// The check every row of logits passes before anyone reads it.
@Suite("Non-finite logits are found wherever they are")
struct FiniteLogitsTests {
    @Test("One NaN or infinity anywhere in a row (vector body or tail) is reported with its token and position",
          arguments: [Float.nan, .infinity, -.infinity, Float(bitPattern: 0x7FC0_0001)])
    func anywhere(_ bad: Float) throws {
        for count in [1, 7, 16, 17, 49_152, 49_155] {
            for index in Set([0, count / 2, count - 1]) {
                var row = [Float](repeating: 1.5, count: count)
                row[index] = bad
                do {
                    try row.withUnsafeBufferPointer { try InferenceSession.checkFinite($0, position: 42) }
                    Issue.record("\(bad) at \(index) of \(count) went unnoticed")
                } catch let error as LanguageModelError {
                    #expect(error.kind == .nonFinite)
                    #expect(error.message.contains("token \(index)") && error.message.contains("position 42"), "\(error.message)")
                }
            }
        }
    }

    @Test("Finite extremes pass")
    func finiteExtremes() throws {
        let row: [Float] = [.greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude, 0, -0.0]
            + [Float](repeating: -1e30, count: 40)
        try row.withUnsafeBufferPointer { try InferenceSession.checkFinite($0, position: 0) }
        try [Float]().withUnsafeBufferPointer { try InferenceSession.checkFinite($0, position: 0) }
    }
}

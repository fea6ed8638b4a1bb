/// SplitMix64: a small, fast generator whose whole state is one word, so case `i` of seed `s` is
/// reproduced from `(s, i)` alone (`ember fuzz --seed s --replay i`).
struct FuzzRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64, index: Int) {
        state = seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(truncatingIfNeeded: index) &* 0xD1B5_4A32_D192_ED69
        _ = next()
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// True with probability `probability`.
    mutating func chance(_ probability: Double) -> Bool {
        Double.random(in: 0..<1, using: &self) < probability
    }

    /// One element of a non-empty collection.
    mutating func pick<C: Collection>(_ collection: C) -> C.Element {
        collection[collection.index(collection.startIndex, offsetBy: Int.random(in: 0..<collection.count, using: &self))]
    }

    /// An integer in `range`.
    mutating func integer(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

/// Values that break code which trusts a number: zero, negatives, powers of two at the edges of
/// 8, 16, 32 and 64 bits, and the value next to the original.
enum BoundaryValues {
    static func integers(near original: Int) -> [Int] {
        [0, 1, -1, 2, 3, 7, 8, 255, 256, 65_535, 65_536, Int(Int32.max), Int(Int32.max) + 1, Int(UInt32.max),
         Int(UInt32.max) + 1, 1 << 40, 1 << 53, 1 << 62, Int.max, Int.min, original &+ 1, original &- 1,
         original &* 2, original / 2, original &* 1_000]
    }

    static func floats(near original: Double) -> [Double] {
        [0, -0.0, -1, 1, .nan, .infinity, -.infinity, 1e-45, 1e-300, 1e38, 1e308, -1e308, original * 10,
         original / 10, -original, original + 0.5]
    }

    /// Strings given where a command expects a value: numbers out of range, sizes, paths that are
    /// not files, text that is not UTF-8 once the shell passes it through.
    static let argumentValues = [
        "", "0", "-1", "1", "2", "nan", "-nan", "inf", "-inf", "1e309", "1e-45", "0.5", "-0", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "4294967296", "1e6", "0x10", "1_000", "abc", " ", "1MiB",
        "0B", "1TiB", "1TB", "999999999999999GiB", "-5MiB", "1.5GiB", "/dev/null", "/dev/zero", "/", ".", "..",
        "/nonexistent/file", "\u{0}", "\u{FFFD}", "é", "🙂", String(repeating: "a", count: 5_000), "--json", "-h",
    ]
}

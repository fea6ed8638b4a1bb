/// XXH3-64 (xxHash 0.8, seed 0, the default 192-byte secret): the compressed container's checksum for
/// chunks, the header, the index and the seek table, and the model cache's per-chunk record
/// (`FileChecksum` in Ember), which is why it lives here and not in EmberStorage (which needs zstd).
///
/// It is the same function as `XXH3_64bits()` in xxhash.h and `xxhsum -H3`, written in Swift so
/// neither needs a library for it. Inputs longer than 240 bytes take the vectorised path
/// (eight 64-bit lanes, `SIMD8<UInt64>`), which runs at tens of GB/s, so verifying every chunk on
/// every load costs a few percent of decoding.
public enum XXH3 {
    /// The 64-bit hash of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return emptyHash }
        let length = bytes.count
        switch length {
        case 1...3: return hash1to3(base, length)
        case 4...8: return hash4to8(base, length)
        case 9...16: return hash9to16(base, length)
        case 17...128: return hash17to128(base, length)
        case 129...240: return hash129to240(base, length)
        default: return hashLong(base, length)
        }
    }

    /// The 64-bit hash of an array of bytes.
    public static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { hash($0) }
    }

    // MARK: Constants

    static let prime32_1: UInt64 = 0x9E37_79B1
    static let prime32_2: UInt64 = 0x85EB_CA77
    static let prime32_3: UInt64 = 0xC2B2_AE3D
    static let prime64_1: UInt64 = 0x9E37_79B1_85EB_CA87
    static let prime64_2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    static let prime64_3: UInt64 = 0x1656_67B1_9E37_79F9
    static let prime64_4: UInt64 = 0x85EB_CA77_C2B2_AE63
    static let prime64_5: UInt64 = 0x27D4_EB2F_1656_67C5

    /// `XXH3_kSecret`.
    static let secret: [UInt8] = [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
        0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
        0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
        0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
        0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
        0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
        0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
        0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
        0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
        0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
        0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
        0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
    ]

    /// The secret's 64-bit little-endian word at byte `offset`.
    @inline(__always)
    static func secretWord(_ offset: Int) -> UInt64 {
        secret.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    }

    @inline(__always)
    static func secretWord32(_ offset: Int) -> UInt64 {
        secret.withUnsafeBytes { UInt64(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self))) }
    }

    /// The keys of the long-input loop, loaded once: one per stripe of a block, the scrambler's and
    /// the last stripe's.
    struct LongKeys {
        var stripe: [SIMD8<UInt64>]
        var scramble: SIMD8<UInt64>
        var last: SIMD8<UInt64>
    }

    static let longKeys: LongKeys = secret.withUnsafeBytes { bytes in
        func vector(_ offset: Int) -> SIMD8<UInt64> {
            SIMD8<UInt64>((0..<8).map { UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 8 * $0, as: UInt64.self)) })
        }
        return LongKeys(
            stripe: (0..<stripesPerBlock).map { vector($0 * 8) },
            scramble: vector(secret.count - stripeLength),
            last: vector(secret.count - stripeLength - 7))
    }

    static let stripeLength = 64
    static let stripesPerBlock = (192 - 64) / 8
    static let blockLength = stripeLength * stripesPerBlock

    static var emptyHash: UInt64 { avalanche64(secretWord(56) ^ secretWord(64)) }

    // MARK: Mixers

    @inline(__always)
    static func load64(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inline(__always)
    static func load32(_ pointer: UnsafeRawPointer, _ offset: Int) -> UInt64 {
        UInt64(UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }

    @inline(__always)
    static func multiplyFold(_ left: UInt64, _ right: UInt64) -> UInt64 {
        let product = left.multipliedFullWidth(by: right)
        return product.low ^ product.high
    }

    @inline(__always)
    static func avalanche64(_ value: UInt64) -> UInt64 {
        var hash = value
        hash ^= hash >> 33
        hash &*= prime64_2
        hash ^= hash >> 29
        hash &*= prime64_3
        hash ^= hash >> 32
        return hash
    }

    @inline(__always)
    static func avalanche(_ value: UInt64) -> UInt64 {
        var hash = value ^ (value >> 37)
        hash &*= 0x1656_6791_9E37_79F9
        return hash ^ (hash >> 32)
    }

    @inline(__always)
    static func rrmxmx(_ value: UInt64, _ length: UInt64) -> UInt64 {
        var hash = value ^ value.rotatedLeft(49) ^ value.rotatedLeft(24)
        hash &*= 0x9FB2_1C65_1E98_DF25
        hash ^= (hash >> 35) &+ length
        hash &*= 0x9FB2_1C65_1E98_DF25
        return hash ^ (hash >> 28)
    }

    @inline(__always)
    static func mix16(_ input: UnsafeRawPointer, _ offset: Int, secretOffset: Int) -> UInt64 {
        multiplyFold(load64(input, offset) ^ secretWord(secretOffset),
                     load64(input, offset + 8) ^ secretWord(secretOffset + 8))
    }

    // MARK: Lengths 1 to 240

    static func hash1to3(_ input: UnsafeRawPointer, _ length: Int) -> UInt64 {
        let first = UInt32(input.load(fromByteOffset: 0, as: UInt8.self))
        let middle = UInt32(input.load(fromByteOffset: length >> 1, as: UInt8.self))
        let last = UInt32(input.load(fromByteOffset: length - 1, as: UInt8.self))
        let combined = (first << 16) | (middle << 24) | last | (UInt32(length) << 8)
        let bitflip = secretWord32(0) ^ secretWord32(4)
        return avalanche64(UInt64(combined) ^ bitflip)
    }

    static func hash4to8(_ input: UnsafeRawPointer, _ length: Int) -> UInt64 {
        let input1 = load32(input, 0)
        let input2 = load32(input, length - 4)
        let bitflip = secretWord(8) ^ secretWord(16)
        let keyed = (input2 &+ (input1 << 32)) ^ bitflip
        return rrmxmx(keyed, UInt64(length))
    }

    static func hash9to16(_ input: UnsafeRawPointer, _ length: Int) -> UInt64 {
        let bitflip1 = secretWord(24) ^ secretWord(32)
        let bitflip2 = secretWord(40) ^ secretWord(48)
        let low = load64(input, 0) ^ bitflip1
        let high = load64(input, length - 8) ^ bitflip2
        let accumulator = UInt64(length) &+ low.byteSwapped &+ high &+ multiplyFold(low, high)
        return avalanche(accumulator)
    }

    static func hash17to128(_ input: UnsafeRawPointer, _ length: Int) -> UInt64 {
        var accumulator = UInt64(length) &* prime64_1
        if length > 32 {
            if length > 64 {
                if length > 96 {
                    accumulator &+= mix16(input, 48, secretOffset: 96)
                    accumulator &+= mix16(input, length - 64, secretOffset: 112)
                }
                accumulator &+= mix16(input, 32, secretOffset: 64)
                accumulator &+= mix16(input, length - 48, secretOffset: 80)
            }
            accumulator &+= mix16(input, 16, secretOffset: 32)
            accumulator &+= mix16(input, length - 32, secretOffset: 48)
        }
        accumulator &+= mix16(input, 0, secretOffset: 0)
        accumulator &+= mix16(input, length - 16, secretOffset: 16)
        return avalanche(accumulator)
    }

    static func hash129to240(_ input: UnsafeRawPointer, _ length: Int) -> UInt64 {
        var accumulator = UInt64(length) &* prime64_1
        let rounds = length / 16
        for index in 0..<8 {
            accumulator &+= mix16(input, 16 * index, secretOffset: 16 * index)
        }
        accumulator = avalanche(accumulator)
        for index in 8..<rounds {
            accumulator &+= mix16(input, 16 * index, secretOffset: 16 * (index - 8) + 3)
        }
        accumulator &+= mix16(input, length - 16, secretOffset: 136 - 17)
        return avalanche(accumulator)
    }

    // MARK: Long inputs

    /// One 64-byte stripe into the eight accumulators (`XXH3_accumulate_512`).
    @inline(__always)
    static func accumulate(_ accumulators: inout SIMD8<UInt64>, _ input: UnsafeRawPointer, key: SIMD8<UInt64>) {
        var data = input.loadUnaligned(as: SIMD8<UInt64>.self)
        #if _endian(big)
        for lane in 0..<8 { data[lane] = UInt64(littleEndian: data[lane]) }
        #endif
        let keyed = data ^ key
        let product = (keyed & 0xFFFF_FFFF) &* (keyed &>> 32)
        let swapped = SIMD8<UInt64>(data[1], data[0], data[3], data[2], data[5], data[4], data[7], data[6])
        accumulators &+= swapped &+ product
    }

    static func hashLong(_ input: UnsafeRawPointer, _ length: Int) -> UInt64 {
        var hasher = LongHasher(length: length)
        return hasher.finish(input)
    }

    /// The long-input hash (more than 240 bytes) of a buffer being filled front to back: ``consume``
    /// hashes the whole 1024-byte blocks already written while they are still in cache, ``finish``
    /// the rest. The result equals ``hash(_:)`` of the finished buffer.
    public struct LongHasher: Sendable {
        public let length: Int
        /// Full blocks the one-shot loop processes: `(length - 1) / 1024`.
        let blockCount: Int
        private(set) var blocksDone = 0
        private var accumulators = SIMD8<UInt64>(prime32_3, prime64_1, prime64_2, prime64_3,
                                                 prime64_4, prime32_2, prime64_5, prime32_1)

        public init(length: Int) {
            precondition(length > 240, "the long hash is for inputs over 240 bytes")
            self.length = length
            blockCount = (length - 1) / blockLength
        }

        /// Hashes the blocks inside the first `available` bytes at `input` not hashed yet.
        public mutating func consume(_ input: UnsafeRawPointer, available: Int) {
            let target = min(blockCount, available / blockLength)
            guard target > blocksDone else { return }
            let keys = longKeys
            keys.stripe.withUnsafeBufferPointer { stripeKeys in
                for block in blocksDone..<target {
                    let start = input + block * blockLength
                    for stripe in 0..<stripesPerBlock {
                        accumulate(&accumulators, start + stripe * stripeLength, key: stripeKeys[stripe])
                    }
                    accumulators ^= accumulators &>> 47
                    accumulators ^= keys.scramble
                    accumulators &*= prime32_1
                }
            }
            blocksDone = target
        }

        /// The hash of all `length` bytes at `input`.
        public mutating func finish(_ input: UnsafeRawPointer) -> UInt64 {
            consume(input, available: length)
            let keys = longKeys
            keys.stripe.withUnsafeBufferPointer { stripeKeys in
                let start = input + blockCount * blockLength
                let stripes = ((length - 1) - blockCount * blockLength) / stripeLength
                for stripe in 0..<stripes {
                    accumulate(&accumulators, start + stripe * stripeLength, key: stripeKeys[stripe])
                }
                accumulate(&accumulators, input + length - stripeLength, key: keys.last)
            }
            var result = UInt64(length) &* prime64_1
            for pair in 0..<4 {
                result &+= multiplyFold(accumulators[2 * pair] ^ secretWord(11 + 16 * pair),
                                        accumulators[2 * pair + 1] ^ secretWord(11 + 16 * pair + 8))
            }
            return avalanche(result)
        }
    }
}

extension UInt64 {
    @inline(__always)
    fileprivate func rotatedLeft(_ count: UInt64) -> UInt64 {
        (self << count) | (self >> (64 &- count))
    }
}

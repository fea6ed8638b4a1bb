import Testing
import EmberCore
@testable import Ember
import EmberCore

/// SHA-256 against the FIPS 180-4 / NIST example vectors, fed whole and in uneven pieces.
struct SHA256Tests {
    static let vectors: [(message: [UInt8], hex: String)] = [
        ([], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        (Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        // 56 bytes: the padding no longer fits, so a second block is needed.
        (Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        // 112 bytes: two blocks of message, then a padding block.
        (Array("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8),
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"),
        // Exactly one block (64 bytes).
        (Array(repeating: UInt8(ascii: "a"), count: 64),
         "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        // 55 bytes: the largest message whose padding fits in one block.
        (Array(repeating: UInt8(ascii: "a"), count: 55),
         "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
    ]

    @Test(arguments: 0..<vectors.count)
    func knownVector(index: Int) {
        let vector = Self.vectors[index]
        #expect(SHA256.hexString(SHA256.hash(vector.message)) == vector.hex)
    }

    @Test(arguments: 0..<vectors.count)
    func pieceSizesDoNotChangeTheDigest(index: Int) {
        let vector = Self.vectors[index]
        for pieceSize in [1, 3, 63, 64, 65] {
            var hasher = SHA256()
            var start = 0
            while start < vector.message.count {
                let end = min(start + pieceSize, vector.message.count)
                hasher.update(Array(vector.message[start..<end]))
                start = end
            }
            #expect(SHA256.hexString(hasher.finalize()) == vector.hex, "piece size \(pieceSize)")
        }
    }

    @Test func oneMillionLetterA() {
        var hasher = SHA256()
        let thousand = [UInt8](repeating: UInt8(ascii: "a"), count: 1000)
        for _ in 0..<1000 { hasher.update(thousand) }
        #expect(SHA256.hexString(hasher.finalize()) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func hexStringIsLowercaseAndTwoDigitsPerByte() {
        #expect(SHA256.hexString([0x00, 0x0f, 0xa0, 0xff]) == "000fa0ff")
    }
}

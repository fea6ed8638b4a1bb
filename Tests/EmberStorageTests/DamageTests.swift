import EmberCore
import EmberKernels
import EmberGGUF
import Foundation
import Testing
@testable import EmberStorage

/// Damage anywhere is found and named: a flipped byte in any region, a cut-short file, bytes
/// appended, and 20,000 seeded random mutations that must never crash the reader or load wrong
/// bytes silently.
@Suite("Damaged containers")
struct DamageTests {
    /// A small container (tensors of every type in chunks of a few hundred bytes), its GGUF.
    static let sample: (container: [UInt8], gguf: [UInt8]) = {
        let directory = try! TemporaryDirectory()
        defer { directory.remove() }
        let gguf = SampleModels.everyType(blocks: 4)
        let ggufPath = try! directory.write("sample.gguf", gguf)
        try! ContainerWriter(level: 3, chunkByteCount: 400, threads: 1).pack(ggufPath: ggufPath, to: directory.file("sample.ggz"))
        return (try! readFile(directory.file("sample.ggz")), gguf)
    }()

    /// Opens and fully verifies `bytes`; the first problem found, or nil when everything checks out.
    static func problem(_ bytes: [UInt8]) -> StorageError? {
        do {
            let container = try ModelContainer(bytes: bytes)
            let report = container.verify(threads: 1)
            if let first = report.damagedChunks.first { return first }
            if !report.isIntact { return StorageError(.checksumMismatch, "SHA-256 of the GGUF differs") }
            return nil
        } catch {
            return error
        }
    }

    /// Which part of the file byte `offset` belongs to.
    enum Region: Equatable {
        case header, index, seekTable
        case chunk(Int)
    }

    static func region(of offset: Int, in container: ModelContainer) -> Region {
        if offset < 128 { return .header }
        if offset < container.header.indexOffset + container.header.indexFrameByteCount { return .index }
        for (index, chunk) in container.chunks.enumerated()
        where offset >= chunk.compressedOffset && offset < chunk.compressedOffset + chunk.compressedByteCount {
            return .chunk(index)
        }
        return .seekTable
    }

    @Test("The undamaged sample verifies, and resealing an unchanged file changes nothing")
    func intact() throws {
        #expect(Self.problem(Self.sample.container) == nil)
        let container = try ModelContainer(bytes: Self.sample.container)
        #expect(Self.resealed(Self.sample.container, layout: container) == Self.sample.container)
    }

    @Test("A flipped bit anywhere is detected; in a chunk, the error names the chunk and its tensor")
    func flippedBytes() throws {
        let original = Self.sample.container
        let container = try ModelContainer(bytes: original)
        var regionsSeen: Set<String> = []
        for offset in 0..<original.count {
            var bytes = original
            bytes[offset] ^= UInt8(1) << UInt8(offset % 8)
            let error = try #require(Self.problem(bytes), "a flip at byte \(offset) went unnoticed")
            switch Self.region(of: offset, in: container) {
            case .header:
                regionsSeen.insert("header")
                #expect(error.message.contains("header"), "byte \(offset): \(error.message)")
            case .index:
                regionsSeen.insert("index")
                #expect(error.message.contains("index"), "byte \(offset): \(error.message)")
            case .seekTable:
                regionsSeen.insert("seek table")
                #expect(error.message.contains("seek table"), "byte \(offset): \(error.message)")
            case .chunk(let chunk):
                regionsSeen.insert("chunk")
                #expect(error.chunk == chunk, "byte \(offset) is in chunk \(chunk): \(error.message)")
                #expect(error.tensor == container.tensorName(ofChunk: chunk), "byte \(offset): \(error.message)")
                if let tensor = error.tensor { #expect(error.message.contains("'\(tensor)'")) }
            }
        }
        #expect(regionsSeen == ["header", "index", "seek table", "chunk"])
    }

    @Test("A cut-short file names the first chunk it lost")
    func truncated() throws {
        let original = Self.sample.container
        let container = try ModelContainer(bytes: original)
        var lengths = [0, 1, 7, 127, 128, 129, container.header.indexOffset + container.header.indexFrameByteCount - 1, original.count - 1]
        for chunk in container.chunks {
            lengths += [chunk.compressedOffset, chunk.compressedOffset + 1, chunk.compressedOffset + chunk.compressedByteCount - 1]
        }
        for length in lengths {
            let error = try #require(Self.problem(Array(original[0..<length])), "cut to \(length) bytes went unnoticed")
            #expect(error.code == .truncated, "\(length) bytes: \(error.message)")
            if case .chunk(let chunk) = Self.region(of: length, in: container), length > container.chunks[chunk].compressedOffset || chunk > 0 {
                let lost = container.chunks.firstIndex { $0.compressedOffset + $0.compressedByteCount > length }!
                #expect(error.chunk == lost, "\(length) bytes: \(error.message)")
                #expect(error.tensor == container.tensorName(ofChunk: lost))
            }
        }
        let appended = try #require(Self.problem(original + [0]))
        #expect(appended.code == .malformed)
        #expect(appended.message.contains("appended"))
    }

    @Test("Not a container: a GGUF, an empty file, text")
    func notAContainer() throws {
        #expect(Self.problem(Self.sample.gguf)?.code == .notAContainer)
        #expect(Self.problem([])?.code == .truncated)
        #expect(Self.problem(Array(String(repeating: "hello ", count: 40).utf8))?.code == .notAContainer)
    }

    /// The header, index and seek table with their checksums recomputed, so the parser's own checks
    /// (not just the checksums) meet the mutations.
    static func resealed(_ input: [UInt8], layout container: ModelContainer) -> [UInt8] {
        var bytes = input
        let indexStart = container.header.indexOffset
        let indexEnd = indexStart + container.header.indexFrameByteCount
        let seekStart = container.chunks.last!.compressedOffset + container.chunks.last!.compressedByteCount
        guard bytes.count == container.header.containerByteCount else { return bytes }
        func put(_ value: UInt64, at offset: Int) {
            for k in 0..<8 { bytes[offset + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
        }
        put(XXH3.hash(Array(bytes[seekStart...])), at: indexStart + 8 + 24)
        put(XXH3.hash(Array(bytes[(indexStart + 8)..<indexEnd])), at: 88)
        put(XXH3.hash(Array(bytes[8..<120])), at: 120)
        return bytes
    }

    static func mutate(_ input: [UInt8], in range: Range<Int>, _ random: inout TestRandom, keepLength: Bool) -> [UInt8] {
        var bytes = input
        for _ in 0..<(1 + random.below(4)) {
            guard !bytes.isEmpty else { break }
            let count = min(range.upperBound, bytes.count) - range.lowerBound
            guard count > 0 else { break }
            let at = range.lowerBound + random.below(count)
            switch random.below(keepLength ? 5 : 7) {
            case 0: bytes[at] ^= UInt8(1) << UInt8(random.below(8))
            case 1: bytes[at] = UInt8(truncatingIfNeeded: random.next())
            case 2, 3:
                let extremes: [UInt64] = [.max, 1 << 63, 1 << 32, UInt64(Int.max), 0, 0xFFFF_FFFF, 0xFFFF, UInt64(bytes.count), 1]
                let value = extremes[random.below(extremes.count)]
                let width = [1, 2, 4, 8][random.below(4)]
                for k in 0..<width where at + k < bytes.count { bytes[at + k] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(k))) }
            case 4:
                let length = 1 + random.below(32)
                let from = range.lowerBound + random.below(count)
                for k in 0..<length where from + k < bytes.count && at + k < bytes.count { bytes[at + k] = bytes[from + k] }
            case 5: bytes.removeLast(random.below(bytes.count))
            default:
                if random.below(2) == 0 {
                    bytes.insert(contentsOf: random.bytes(1 + random.below(8)), at: at)
                } else {
                    bytes.removeSubrange(at..<min(bytes.count, at + 1 + random.below(8)))
                }
            }
        }
        return bytes
    }

    @Test("20,000 seeded random mutations: rejected with an error or intact, never a crash or wrong bytes")
    func fuzz() throws {
        let seed: UInt64 = 0x6_6A5E
        var random = TestRandom(seed: seed)
        let original = Self.sample.container
        let container = try ModelContainer(bytes: original)
        let expectedSHA = SHA256.hash(Self.sample.gguf)
        let structure = 0..<(container.header.indexOffset + container.header.indexFrameByteCount)
        let seekTable = (container.chunks.last!.compressedOffset + container.chunks.last!.compressedByteCount)..<original.count
        var rejected = 0, intact = 0
        var codes: [StorageError.Code: Int] = [:]
        for round in 0..<20_000 {
            let bytes: [UInt8]
            switch round % 4 {
            case 0:  // anywhere, lengths may change
                bytes = Self.mutate(original, in: 0..<original.count, &random, keepLength: false)
            case 1:  // header and index, checksums recomputed so the parser must catch it
                bytes = Self.resealed(Self.mutate(original, in: structure, &random, keepLength: true), layout: container)
            case 2:  // seek table, checksums recomputed
                bytes = Self.resealed(Self.mutate(original, in: seekTable, &random, keepLength: true), layout: container)
            default:  // chunk data, checksums recomputed: zstd and the chunk checksums must catch it
                bytes = Self.resealed(Self.mutate(original, in: structure.upperBound..<seekTable.lowerBound, &random, keepLength: true), layout: container)
            }
            do {
                let mutated = try ModelContainer(bytes: bytes)
                let report = mutated.verify(threads: 1)
                for tensor in mutated.tensors { _ = try? mutated.readTensor(named: tensor.name) }
                if report.isIntact {
                    // Accepted only if it still decodes to exactly the original GGUF, and only
                    // unchanged or differing in the version fields a newer writer may raise.
                    #expect(report.computedSHA256 == expectedSHA, "seed \(seed) round \(round)")
                    let differences = (0..<min(bytes.count, original.count)).filter { bytes[$0] != original[$0] }
                    let allowed = Set(16..<20).union([88, 89, 90, 91, 92, 93, 94, 95, 120, 121, 122, 123, 124, 125, 126, 127])
                    #expect(bytes.count == original.count && differences.allSatisfy { allowed.contains($0) },
                            "seed \(seed) round \(round): accepted with changes at \(differences.prefix(8))")
                    intact += 1
                } else {
                    rejected += 1
                }
            } catch {
                codes[error.code, default: 0] += 1
                rejected += 1
            }
        }
        print("container fuzz (seed \(seed)): \(rejected) rejected, \(intact) intact; at open: \(codes.sorted { $0.key.rawValue < $1.key.rawValue })")
        #expect(rejected + intact == 20_000)
        #expect(rejected > 15_000)
    }
}

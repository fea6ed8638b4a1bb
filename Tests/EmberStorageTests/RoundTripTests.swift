import EmberCore
import EmberKernels
import EmberGGUF
import Foundation
import Testing
@testable import EmberStorage

@Suite("XXH3-64")
struct XXH3Tests {
    /// `xxhsum -H3` over bytes `((i * 7 + 3) * (i >> 8 | 1)) & 255`, one length per branch of the algorithm.
    static let vectors: [(Int, UInt64)] = [
        (0, 0x2d06800538d394c2), (1, 0x13e608bc156defed), (2, 0x1c9074b93943b86c), (3, 0xa9088dda485b481c),
        (4, 0x6d9253b16c8b1ed3), (5, 0x998620e10e3a4b37), (8, 0x60539db630471163), (9, 0xfeff668361d723a8),
        (16, 0xb8c859b0f030b585), (17, 0x714a04408e79b80f), (33, 0x3e44983ad21679c8), (64, 0x287eb1fa9e4be2c1),
        (65, 0x829218de4d798646), (96, 0xf084e7cfbc624743), (97, 0x1daa83271a8e7b7c), (128, 0x67425a03650261bf),
        (129, 0xc664bf3311c6abc4), (200, 0x746cd0025327bf5b), (240, 0x64556dc6b462a6cf), (241, 0x8beadd3a8874fe17),
        (1023, 0xd5c62243bcff8a8e), (1024, 0xdb78f5ef2bf84ce6), (1025, 0x0b96c08edf393d47), (4096, 0x727a28f96de184b4),
        (100_003, 0x449976bc64f3b933),
    ]

    @Test("Matches xxhsum -H3 at every length class", arguments: 0..<vectors.count)
    func knownVector(index: Int) {
        let (length, expected) = Self.vectors[index]
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: ($0 * 7 + 3) * ($0 >> 8 | 1)) }
        #expect(XXH3.hash(bytes) == expected, "length \(length)")
    }
}

@Suite("Raw zstd frames")
struct RawFrameTests {
    @Test("A hand-built frame of raw blocks decodes with libzstd at every header size and block count",
          arguments: [1, 255, 256, 65_791, 65_792, 131_072, 131_073, 300_000])
    func rawFrame(size: Int) throws {
        var random = TestRandom(seed: UInt64(size))
        let bytes = random.bytes(size)
        var frame: [UInt8] = []
        let frameSize = bytes.withUnsafeBytes { Zstd.appendRawFrame($0, to: &frame) }
        #expect(frameSize == frame.count)
        #expect(frame.count == size + 3 * ((size + 131_071) / 131_072) + (size < 256 ? 6 : size < 65_792 ? 7 : 9))
        let decoder = try ChunkDecoder()
        var decoded = [UInt8](repeating: 0, count: size)
        let problem = frame.withUnsafeBytes { source in decoded.withUnsafeMutableBytes { decoder.decodeFrame(source, into: $0) } }
        #expect(problem == nil)
        #expect(decoded == bytes)
    }
}

@Suite("Stream layouts")
struct StreamLayoutTests {
    @Test("Every built-in layout covers its block; specialised kernels equal the generic loop",
          arguments: TensorType.allCases)
    func layouts(type: TensorType) throws {
        guard let layout = StreamLayout.builtIn(for: type) else {
            #expect(type == .i8)
            return
        }
        #expect(layout.blockByteCount == type.bytesPerBlock)
        var random = TestRandom(seed: UInt64(type.rawValue) + 7)
        for blocks in [1, 2, 15, 16, 17, 33, 100, 1000, 3001] {
            let original = random.bytes(blocks * layout.blockByteCount)
            var grouped = [UInt8](repeating: 0, count: original.count)
            var fast = [UInt8](repeating: 0, count: original.count)
            var generic = [UInt8](repeating: 0, count: original.count)
            original.withUnsafeBytes { source in
                grouped.withUnsafeMutableBytes { layout.group(source.baseAddress!, blockCount: blocks, into: $0.baseAddress!) }
            }
            grouped.withUnsafeBytes { source in
                fast.withUnsafeMutableBytes { layout.ungroup(source.baseAddress!, blockCount: blocks, into: $0.baseAddress!) }
                generic.withUnsafeMutableBytes { layout.ungroupGeneric(source.baseAddress!, blockCount: blocks, into: $0.baseAddress!) }
            }
            #expect(fast == original, "\(type) kernel \(layout.kernel), \(blocks) blocks")
            var fused = [UInt8](repeating: 0, count: original.count)
            let checksum = grouped.withUnsafeBytes { source in
                fused.withUnsafeMutableBytes { layout.ungroupAndHash(source.baseAddress!, blockCount: blocks, into: $0.baseAddress!) }
            }
            #expect(fused == original && checksum == XXH3.hash(original), "\(type) ungroup and hash, \(blocks) blocks")
            #expect(generic == original, "\(type) generic, \(blocks) blocks")
        }
    }

    @Test("Layouts that miss or repeat a byte are refused")
    func invalidLayouts() {
        typealias Run = StreamLayout.Run
        #expect(StreamLayout(blockByteCount: 4, runs: [Run(start: 0, length: 2), Run(start: 1, length: 3)]) == nil)
        #expect(StreamLayout(blockByteCount: 4, runs: [Run(start: 0, length: 3)]) == nil)
        #expect(StreamLayout(blockByteCount: 4, runs: [Run(start: 0, length: 0), Run(start: 0, length: 4)]) == nil)
        #expect(StreamLayout(blockByteCount: 4, runs: [Run(start: 2, length: 4)]) == nil)
        #expect(StreamLayout(blockByteCount: 0, runs: []) == nil)
        #expect(StreamLayout(blockByteCount: 4, runs: [Run(start: 2, length: 2), Run(start: 0, length: 2)]) != nil)
    }
}

@Suite("Container round trips")
struct RoundTripTests {
    /// Packs `gguf` with small chunks (so tensors span several) and opens the result.
    static func pack(_ gguf: [UInt8], in directory: TemporaryDirectory, chunkByteCount: Int = 1000,
                     level: Int = 3, threads: Int = 2, name: String = "model") throws -> (String, ModelContainer) {
        let ggufPath = try directory.write("\(name).gguf", gguf)
        let output = directory.file("\(name).ggz")
        try ContainerWriter(level: level, chunkByteCount: chunkByteCount, threads: threads).pack(ggufPath: ggufPath, to: output)
        return (output, try ModelContainer(path: output))
    }

    @Test("Every tensor type reads back byte for byte; the GGUF rebuilds byte for byte",
          arguments: [(32, 40, 1000), (64, 7, 300), (32, 1, 1 << 20), (128, 3, 1)])
    func everyType(alignment: Int, blocks: Int, chunkByteCount: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let gguf = SampleModels.everyType(blocks: blocks, alignment: alignment)
        let (path, container) = try Self.pack(gguf, in: directory, chunkByteCount: chunkByteCount)
        let original = try GGUFFile(bytes: gguf)

        #expect(Set(container.tensorNames) == Set(original.tensors.map(\.name)))
        for info in original.tensors {
            let expected = Array(UnsafeRawBufferPointer(start: original.tensorData(info), count: info.byteCount))
            #expect(try container.readTensor(named: info.name) == expected, "\(info.name)")
            let tensor = try #require(container.tensor(named: info.name))
            #expect(tensor.type == info.type)
            for chunk in tensor.chunks {
                #expect(container.chunks[chunk].byteCount % info.type.bytesPerBlock == 0, "chunks hold whole blocks")
                #expect(container.chunks[chunk].tensor == container.tensors.firstIndex(of: tensor))
            }
        }
        #expect(try container.ggufHeaderBytes() == Array(gguf[0..<original.dataOffset]))
        let header = try container.ggufHeader()
        #expect(header.metadataKeys == original.metadataKeys)
        #expect(header.metadata == original.metadata)
        #expect(header.tensors == original.tensors)
        #expect(header.dataOffset == original.dataOffset)

        try container.reconstructGGUF(to: directory.file("rebuilt.gguf"))
        #expect(try readFile(directory.file("rebuilt.gguf")) == gguf)

        let loaded = try container.loadGGUF(threads: 2, checkSHA256: true)
        #expect(Array(UnsafeRawBufferPointer(start: loaded.baseAddress, count: loaded.fileSize)) == gguf)

        let report = container.verify()
        #expect(report.isIntact)
        #expect(report.damagedChunks.isEmpty)
        #expect(container.header.ggufSHA256 == SHA256.hash(gguf))
        #expect(container.header.containerByteCount == (try readFile(path)).count)
    }

    @Test("Trailing bytes after the last tensor and a GGUF with no tensors survive")
    func remainderOnly() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("none"))
        let empty = writer.serialized()
        let (_, container) = try Self.pack(empty, in: directory, chunkByteCount: 64, name: "empty")
        #expect(container.tensors.isEmpty)
        try container.reconstructGGUF(to: directory.file("empty-rebuilt.gguf"))
        #expect(try readFile(directory.file("empty-rebuilt.gguf")) == empty)

        let trailing = SampleModels.everyType(blocks: 2) + Array("trailing bytes".utf8)
        let (_, second) = try Self.pack(trailing, in: directory, name: "trailing")
        try second.reconstructGGUF(to: directory.file("trailing-rebuilt.gguf"))
        #expect(try readFile(directory.file("trailing-rebuilt.gguf")) == trailing)
    }

    @Test("The output does not depend on the thread count")
    func deterministic() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let gguf = SampleModels.everyType(blocks: 30)
        let (one, _) = try Self.pack(gguf, in: directory, threads: 1, name: "one")
        let (three, _) = try Self.pack(gguf, in: directory, threads: 3, name: "three")
        #expect(try readFile(one) == readFile(three))
    }

    @Test("The file is a zstd stream: frames and skippable frames, seek table last")
    func seekableLayout() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (path, container) = try Self.pack(SampleModels.everyType(blocks: 5), in: directory)
        let bytes = try readFile(path)
        func u32(_ offset: Int) -> UInt32 { bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) } }
        #expect(u32(0) == 0x184D_2A5B)
        #expect(u32(128) == 0x184D_2A5C)
        for chunk in container.chunks {
            #expect(u32(chunk.compressedOffset) == 0xFD2F_B528, "each chunk starts with a zstd frame")
        }
        #expect(u32(bytes.count - 4) == 0x8F92_EAB1)
        #expect(Int(u32(bytes.count - 9)) == container.header.dataFrameCount + 2)
    }
}

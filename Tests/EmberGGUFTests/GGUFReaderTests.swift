import EmberCore
import EmberGGUF
import Foundation
import Testing

/// A small deterministic generator for tests (SplitMix64), so failures reproduce from the seed.
struct TestRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
}

enum Samples {
    /// A file holding one value of every metadata type, nested arrays, and two tensors.
    static func everyType(version: UInt32 = 3, alignment: Int = 32) -> GGUFWriter {
        var writer = GGUFWriter(version: version, alignment: alignment)
        writer.set("general.architecture", .string("llama"))
        writer.set("test.u8", .uint8(200))
        writer.set("test.i8", .int8(-100))
        writer.set("test.u16", .uint16(60_000))
        writer.set("test.i16", .int16(-30_000))
        writer.set("test.u32", .uint32(4_000_000_000))
        writer.set("test.i32", .int32(-2_000_000_000))
        writer.set("test.f32", .float32(3.25))
        writer.set("test.bool", .bool(true))
        writer.set("test.string", .string("héllo, 世界 😀"))
        writer.set("test.u64", .uint64(1 << 40))
        writer.set("test.i64", .int64(-(1 << 40)))
        writer.set("test.f64", .float64(-0.125))
        writer.set("test.strings", .array(.string(["a", "", "ñ", "<|im_start|>"])))
        writer.set("test.floats", .array(.float32([1, -2.5, 1e-9])))
        writer.set("test.ints", .array(.int32([1, -2, 3])))
        writer.set("test.bools", .array(.bool([true, false])))
        writer.set("test.nested", .array(.array([.uint8([1, 2]), .string(["x"]), .array([.int64([7])])])))
        writer.addTensor(name: "tensor.a", dimensions: [4, 2], type: .f32, data: [UInt8](repeating: 1, count: 32))
        writer.addTensor(name: "tensor.b", dimensions: [32], type: .q8_0, data: [UInt8](repeating: 2, count: 34))
        return writer
    }
}

@Suite("GGUF reader and writer")
struct GGUFReaderTests {
    @Test("Every value type round-trips", arguments: [UInt32(2), 3], [32, 64])
    func roundTrip(version: UInt32, alignment: Int) throws {
        let writer = Samples.everyType(version: version, alignment: alignment)
        let file = try GGUFFile(bytes: writer.serialized())
        #expect(file.version == version)
        #expect(file.alignment == alignment)
        #expect(file.metadata["test.u8"] == .uint8(200))
        #expect(file.metadata["test.i8"] == .int8(-100))
        #expect(file.metadata["test.u16"] == .uint16(60_000))
        #expect(file.metadata["test.i16"] == .int16(-30_000))
        #expect(file.integer("test.u32") == 4_000_000_000)
        #expect(file.integer("test.i32") == -2_000_000_000)
        #expect(file.float("test.f32") == 3.25)
        #expect(file.bool("test.bool") == true)
        #expect(file.string("test.string") == "héllo, 世界 😀")
        #expect(file.integer("test.u64") == 1 << 40)
        #expect(file.integer("test.i64") == -(1 << 40))
        #expect(file.metadata["test.f64"] == .float64(-0.125))
        #expect(file.strings("test.strings") == ["a", "", "ñ", "<|im_start|>"])
        #expect(file.floats("test.floats") == [1, -2.5, 1e-9])
        #expect(file.integers("test.ints") == [1, -2, 3])
        #expect(file.metadata["test.bools"] == .array(.bool([true, false])))
        #expect(file.metadata["test.nested"] == .array(.array([.uint8([1, 2]), .string(["x"]), .array([.int64([7])])])))
        #expect(file.metadataKeys.first == (alignment == 32 ? "general.architecture" : "general.alignment"))
        let a = try #require(file.tensor(named: "tensor.a"))
        #expect(a.dimensions == [4, 2] && a.type == .f32 && a.byteCount == 32)
        #expect(a.rowLength == 4 && a.rowCount == 2)
        let b = try #require(file.tensor(named: "tensor.b"))
        #expect(b.type == .q8_0 && b.byteCount == 34)
        #expect(b.offset % alignment == 0)
        #expect(file.dataOffset % alignment == 0)
        file.withTensorBytes(b) { bytes in #expect(bytes.allSatisfy { $0 == 2 }) }
    }

    @Test("Writing to disk and mapping it back")
    func mappedFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ember-gguf-\(UUID()).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Samples.everyType().write(to: path)
        let file = try GGUFFile(path: path)
        #expect(file.tensors.count == 2)
        #expect(file.fileSize == Samples.everyType().serialized().count)
        #expect(!FileManager.default.fileExists(atPath: path + ".partial"))
    }

    @Test("The real model files parse", arguments: [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", "llama", [TensorType.q4_1: 210, .q8_0: 1, .f32: 61]),
        ("gemma-3-270m-q4_k_m.gguf", "gemma3", [TensorType.q8_0: 10, .q5_0: 81, .q4_K: 27, .q6_K: 9, .f32: 109]),
    ])
    func realModels(fileName: String, architecture: String, typeCounts: [TensorType: Int]) throws {
        let directory = ProcessInfo.processInfo.environment["EMBER_MODELS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? NSHomeDirectory() + "/.cache/ember/models"
        let path = directory + "/" + fileName
        try #require(FileManager.default.fileExists(atPath: path), "model missing at \(path); run `ember models fetch all`")
        let file = try GGUFFile(path: path)
        #expect(file.version == 3)
        #expect(file.string("general.architecture") == architecture)
        var counts: [TensorType: Int] = [:]
        for tensor in file.tensors { counts[tensor.type, default: 0] += 1 }
        #expect(counts == typeCounts)
        let last = try #require(file.tensors.max { $0.offset < $1.offset })
        #expect(file.dataOffset + last.offset + last.byteCount <= file.fileSize)
    }

    /// Bytes of a tiny file, its header fields located by searching the serialized image.
    static func image() -> [UInt8] { Samples.everyType().serialized() }

    static func expectRejection(_ bytes: [UInt8], _ kind: GGUFError.Kind, _ comment: Comment) {
        do {
            _ = try GGUFFile(bytes: bytes)
            Issue.record("accepted a broken file: \(comment)")
        } catch {
            #expect(error.kind == kind, "\(comment): \(error)")
            #expect(!error.description.isEmpty)
        }
    }

    static func patch<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, _ value: T) -> [UInt8] {
        var copy = bytes
        withUnsafeBytes(of: value.littleEndian) { raw in
            for (index, byte) in raw.enumerated() { copy[offset + index] = byte }
        }
        return copy
    }

    /// Offset of the tensor info of `name` (its name's length field) in the image.
    static func tensorInfoOffset(_ bytes: [UInt8], _ name: String) -> Int {
        let needle = [UInt8](name.utf8)
        let lengthField = withUnsafeBytes(of: UInt64(needle.count).littleEndian) { Array($0) }
        let pattern = lengthField + needle + [UInt8](repeating: 0, count: 0)
        var index = 24
        while index + pattern.count <= bytes.count {
            if Array(bytes[index..<(index + pattern.count)]) == pattern,
               bytes[index + pattern.count] < 5, bytes[index + pattern.count + 1] == 0 {
                return index
            }
            index += 1
        }
        return -1
    }

    @Test("Broken headers are rejected with the field and offset")
    func brokenHeaders() throws {
        let bytes = Self.image()
        Self.expectRejection([UInt8]("GGUG".utf8) + bytes[4...], .badMagic, "bad magic")
        Self.expectRejection(Self.patch(bytes, at: 4, UInt32(1)), .unsupportedVersion, "version 1")
        Self.expectRejection(Self.patch(bytes, at: 4, UInt32(99)), .unsupportedVersion, "version 99")
        Self.expectRejection(Array(bytes[..<3]), .truncated, "truncated magic")
        Self.expectRejection(Array(bytes[..<300]), .truncated, "truncated metadata")
        Self.expectRejection(Array(bytes[..<40]), .overflow, "counts larger than the bytes left")
        Self.expectRejection(Self.patch(bytes, at: 8, UInt64.max), .overflow, "huge tensor count")
        Self.expectRejection(Self.patch(bytes, at: 16, UInt64(1) << 60), .overflow, "huge metadata count")
        // The first key's length field sits at byte 24.
        Self.expectRejection(Self.patch(bytes, at: 24, UInt64.max), .truncated, "huge key length")
        // First key is "general.architecture" (20 bytes); its type follows at 24 + 8 + 20.
        Self.expectRejection(Self.patch(bytes, at: 52, UInt32(77)), .unknownType, "unknown value type")
        // Its string value's length: 56; the string itself at 64.
        Self.expectRejection(Self.patch(bytes, at: 56, UInt64(1) << 62), .truncated, "huge string length")
        Self.expectRejection(Self.patch(bytes, at: 64, UInt8(0xFF)), .invalidUTF8, "invalid UTF-8")
    }

    @Test("Broken tensor tables are rejected")
    func brokenTensors() throws {
        let bytes = Self.image()
        let a = Self.tensorInfoOffset(bytes, "tensor.a")
        try #require(a > 0)
        let dimensionCount = a + 8 + 8
        let firstDimension = dimensionCount + 4
        let type = firstDimension + 16
        let offset = type + 4
        Self.expectRejection(Self.patch(bytes, at: dimensionCount, UInt32(9)), .invalidValue, "too many dimensions")
        Self.expectRejection(Self.patch(bytes, at: firstDimension, UInt64(0)), .invalidValue, "zero dimension")
        Self.expectRejection(Self.patch(bytes, at: firstDimension, UInt64(1) << 62), .overflow, "overflowing element count")
        Self.expectRejection(Self.patch(bytes, at: firstDimension, UInt64(1) << 40), .outOfBounds, "data past the end")
        Self.expectRejection(Self.patch(bytes, at: type, UInt32(4)), .unknownType, "unknown tensor type")
        Self.expectRejection(Self.patch(bytes, at: offset, UInt64(3)), .misaligned, "misaligned offset")
        Self.expectRejection(Self.patch(bytes, at: offset, UInt64(1) << 50), .outOfBounds, "offset outside the file")
        // Make tensor "a" start where "b" starts: the two overlap.
        let b = Self.tensorInfoOffset(bytes, "tensor.b")
        let bOffset = b + 8 + 8 + 4 + 8 + 4
        let bDataOffset = bytes[bOffset..<(bOffset + 8)].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        Self.expectRejection(Self.patch(bytes, at: offset, bDataOffset), .overlap, "overlapping tensors")
        // Rows that are not whole blocks: give the Q8_0 tensor 16 elements.
        Self.expectRejection(Self.patch(bytes, at: b + 8 + 8 + 4, UInt64(16)), .invalidValue, "partial quant block")
        // Duplicate names.
        var renamed = bytes
        renamed[b + 8 + 7] = UInt8(ascii: "a")
        Self.expectRejection(renamed, .duplicate, "duplicate tensor name")
        // Truncated data section.
        Self.expectRejection(Array(bytes[..<(bytes.count - 40)]), .outOfBounds, "truncated data")
    }

    @Test("Bad alignment and bools are rejected")
    func badValues() throws {
        var writer = GGUFWriter()
        writer.set("general.alignment", .uint32(48))
        Self.expectRejection(writer.serialized(), .invalidValue, "alignment not a power of two")
        var boolWriter = GGUFWriter()
        boolWriter.set("x", .bool(true))
        var bytes = boolWriter.serialized()
        // magic 4 + version 4 + counts 16 + key (8 + 1) + type 4 = 37: the bool byte.
        bytes[37] = 2
        Self.expectRejection(bytes, .invalidValue, "bool byte 2")
        var nested = GGUFWriter()
        var value = GGUFArray.int8([1])
        for _ in 0..<12 { value = .array([value]) }
        nested.set("deep", .array(value))
        Self.expectRejection(nested.serialized(), .invalidValue, "arrays nested too deep")
    }

    @Test("A missing file is a clear error")
    func missingFile() {
        #expect(throws: GGUFError.self) { try GGUFFile(path: "/nonexistent/model.gguf") }
    }
}

import EmberGGUF
import Testing

/// Errors name the byte where the offending field starts, not byte 0.
@Suite("GGUF errors report the real offset")
struct GGUFOffsetTests {
    @Test("A bad general.alignment names the byte of its value", arguments: [UInt32(48), 0, 1 << 20])
    func alignmentOffset(_ alignment: UInt32) throws {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("general.alignment", .uint32(alignment))
        let bytes = writer.serialized()
        // Header (24 bytes), then the first key (8 + 17 + type 4 + length 8 + "llama" 5), then the
        // second key's name (8 + 17) and type (4): the value starts there.
        let expected = 24 + (8 + 20 + 4 + 8 + 5) + (8 + 17 + 4)
        #expect(bytes[expected..<(expected + 4)].elementsEqual(withUnsafeBytes(of: alignment.littleEndian) { Array($0) }))
        do {
            _ = try GGUFFile(bytes: bytes)
            Issue.record("alignment \(alignment) accepted")
        } catch {
            #expect(error.field == "general.alignment")
            #expect(error.offset == expected)
            #expect(error.description.contains("at byte \(expected)"), "\(error)")
        }
    }

    @Test("A file that cannot be opened names no byte")
    func missingFile() {
        do {
            _ = try GGUFFile(path: "/nonexistent/model.gguf")
            Issue.record("a missing file opened")
        } catch {
            #expect(error.kind == .io)
            #expect(!error.description.contains("at byte"), "\(error)")
        }
    }
}

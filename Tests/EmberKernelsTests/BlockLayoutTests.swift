import EmberCore
@testable import EmberKernels
import Testing

/// Each format's named block offsets against the block sizes GGUF defines, and the format table
/// against what the loader and the kernels do with each type.
@Suite struct BlockLayoutTests {
    @Test func namedOffsetsTileTheBlocks() {
        #expect(Q8_KBlock.quants == Q8_KBlock.scale + 4)
        #expect(Q8_KBlock.sums == Q8_KBlock.quants + 256)
        #expect(Q8_KBlock.bytes == Q8_KBlock.sums + 16 * 2)
        #expect(Q8_KBlock.bytes == TensorType.q8_K.bytesPerBlock)

        #expect(Q4_KBlock.minimumScale == Q4_KBlock.scale + 2 && Q4_KBlock.scales == Q4_KBlock.minimumScale + 2)
        #expect(Q4_KBlock.quants == Q4_KBlock.scales + 12)
        #expect(Q4_KBlock.bytes == Q4_KBlock.quants + 128)
        #expect(Q4_KBlock.bytes == TensorType.q4_K.bytesPerBlock)

        #expect(Q5_KBlock.minimumScale == Q5_KBlock.scale + 2 && Q5_KBlock.scales == Q5_KBlock.minimumScale + 2)
        #expect(Q5_KBlock.highBits == Q5_KBlock.scales + 12)
        #expect(Q5_KBlock.quants == Q5_KBlock.highBits + 32)
        #expect(Q5_KBlock.bytes == Q5_KBlock.quants + 128)
        #expect(Q5_KBlock.bytes == TensorType.q5_K.bytesPerBlock)

        #expect(Q6_KBlock.highBits == Q6_KBlock.lowBits + 128)
        #expect(Q6_KBlock.scales == Q6_KBlock.highBits + 64)
        #expect(Q6_KBlock.scale == Q6_KBlock.scales + 16)
        #expect(Q6_KBlock.bytes == Q6_KBlock.scale + 2)
        #expect(Q6_KBlock.bytes == TensorType.q6_K.bytesPerBlock)

        #expect(Q4_1Block.minimum == Q4_1Block.scale + 2 && Q4_1Block.quants == Q4_1Block.minimum + 2)
        #expect(Q4_1Block.bytes == Q4_1Block.quants + 16 && Q4_1Block.bytes == TensorType.q4_1.bytesPerBlock)
        #expect(Q5_0Block.highBits == Q5_0Block.scale + 2 && Q5_0Block.quants == Q5_0Block.highBits + 4)
        #expect(Q5_0Block.bytes == Q5_0Block.quants + 16 && Q5_0Block.bytes == TensorType.q5_0.bytesPerBlock)
        #expect(Q8_0Block.quants == Q8_0Block.scale + 2)
        #expect(Q8_0Block.bytes == Q8_0Block.quants + 32 && Q8_0Block.bytes == TensorType.q8_0.bytesPerBlock)

        let group = InterleavedWeights.rowGroup
        // The interleaved blocks: halves of every row, then byte j of every row for each j.
        #expect(Q4_1GroupBlock.quants == Q4_1GroupBlock.minimums + group * 2 && Q4_1GroupBlock.minimums == Q4_1GroupBlock.scales + group * 2)
        #expect(Q4_1GroupBlock.bytes == Q4_1GroupBlock.quants + group * 16)
        #expect(Q8_0GroupBlock.quants == Q8_0GroupBlock.scales + group * 2)
        #expect(Q8_0GroupBlock.bytes == Q8_0GroupBlock.quants + group * 32)
        #expect(InterleavedWeights.q4_1GroupBlockBytes == group * TensorType.q4_1.bytesPerBlock)
        #expect(InterleavedWeights.q8_0GroupBlockBytes == group * TensorType.q8_0.bytesPerBlock)
        #expect(InterleavedWeights.q6SuperBlockBytes == group * TensorType.q6_K.bytesPerBlock)
    }

    @Test(arguments: QuantizedFormat.all.map(\.type))
    func formatRowAgreesWithTheKernels(type: TensorType) throws {
        let format = try #require(QuantizedFormat.format(type))
        #expect(Kernels.supportsMatrixMultiply(type))
        #expect(Kernels.activationType(for: type) == format.activationType)
        // An activation row covers whole weight blocks.
        #expect(type.blockSize % format.activationType.blockSize == 0)
        let columns = type.blockSize == 256 ? 512 : 64
        #expect(InterleavedWeights.supports(type, rows: 32, columns: columns) == (format.interleavedType != nil))
        #expect((format.groupBlockBytes > 0) == (format.interleavedType != nil))
        if let interleavedType = format.interleavedType {
            // The interleaved block holds a group's rows of one block of the layout's type.
            #expect(format.groupBlockBytes * (type.blockSize == 256 ? 8 : 1) >= InterleavedWeights.rowGroup * interleavedType.bytesPerBlock)
        }
        // Token-vector scratch only for formats whose rearranged copy has prompt kernels.
        if format.laneScratchBytes(columns, InterleavedWeights.tokenLaneMinimum) > 0 { #expect(format.interleavedType != nil) }
        #expect(format.laneScratchBytes(columns, InterleavedWeights.tokenLaneMinimum - 1) == 0)
        // The memory plan's count of a rearranged matrix is what rearranging allocates.
        let rows = 64
        let data = [UInt8](repeating: 0, count: type.byteCount(elements: rows * columns)!)
        let interleaved = data.withUnsafeBytes { InterleavedWeights(type: type, data: $0.baseAddress!, rows: rows, columns: columns) }
        #expect(format.residentByteCount(elements: rows * columns) == (interleaved?.byteCount ?? data.count))
        if format.interleaving != nil { #expect(interleaved?.type == type) }
        // Streamed rows sum as the rearranged kernels do only where the format says so.
        #expect(Kernels.hasInterleavedOrderKernel(type) == (format.sequentialDot != nil))
        if format.sequentialDot != nil { #expect(format.interleaving != nil) }
    }

    /// The formats whose kernels follow llama.cpp's arithmetic: a model of only these adds Q8_0 up
    /// in llama.cpp's order.
    @Test func formatsThatFollowLlamaCpp() {
        #expect(QuantizedFormat.all.filter(\.followsLlamaCpp).map(\.type) == [.f32, .f16, .q8_0])
    }

    @Test func typesOutsideTheTableAreRefused() {
        for type in [TensorType.q2_K, .q3_K, .q8_1, .q8_K, .bf16, .i8] {
            #expect(QuantizedFormat.format(type) == nil)
            #expect(!Kernels.supportsMatrixMultiply(type))
            #expect(!InterleavedWeights.supports(type, rows: 32, columns: 256))
        }
    }
}

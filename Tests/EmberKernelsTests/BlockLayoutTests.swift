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

        let group = InterleavedWeights.rowGroup
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
        if format.tokenLanes { #expect(format.interleavedType != nil) }
    }

    @Test func typesOutsideTheTableAreRefused() {
        for type in [TensorType.q2_K, .q3_K, .q8_1, .q8_K, .bf16, .i8] {
            #expect(QuantizedFormat.format(type) == nil)
            #expect(!Kernels.supportsMatrixMultiply(type))
            #expect(!InterleavedWeights.supports(type, rows: 32, columns: 256))
        }
    }
}

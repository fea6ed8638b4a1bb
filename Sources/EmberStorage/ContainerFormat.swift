import EmberCore
import EmberKernels

/// Constants of the container format, version 1 (docs/FORMAT.md is the specification).
public enum ContainerFormat {
    /// The format this code writes.
    public static let version: UInt16 = 1
    /// The first 8 bytes of the header frame's content.
    static let magic: [UInt8] = Array("EMBERGGZ".utf8)
    /// The first 4 bytes of the index frame's content.
    static let indexMagic: [UInt8] = Array("GGZI".utf8)

    /// zstd skippable-frame magic numbers (0x184D2A50...5F) used for the header, the index and the
    /// seek table (the last one is the zstd seekable format's).
    static let headerFrameMagic: UInt32 = 0x184D_2A5B
    static let indexFrameMagic: UInt32 = 0x184D_2A5C
    static let seekTableFrameMagic: UInt32 = 0x184D_2A5E
    /// The zstd seekable format's footer magic.
    static let seekableMagic: UInt32 = 0x8F92_EAB1

    /// Bytes of the header frame: 8 of skippable-frame header, 120 of content.
    static let headerFrameByteCount = 128
    static let headerContentByteCount = 120
    /// Bytes of one chunk record in the index.
    static let chunkRecordByteCount = 48
    /// Bytes of the seek table's footer.
    static let seekFooterByteCount = 9

    /// The codec number of zstd frames, the only one of version 1.
    static let codecZstd: UInt8 = 1
    /// The tensor number of chunks holding GGUF bytes outside any tensor.
    static let remainderTensor: UInt32 = 0xFFFF_FFFF

    /// Largest chunk a reader accepts (the writer makes 1 MiB chunks): bounds the scratch a hostile
    /// index can make a reader allocate.
    public static let maximumChunkByteCount = 64 << 20
    /// Largest tensor name, in bytes.
    static let maximumNameByteCount = 4096
}

/// The container's fixed-size header: what the file holds and where its index is.
public struct ContainerHeader: Sendable, Equatable {
    public var formatVersion: UInt16
    /// Readers older than this version must refuse the file.
    public var minimumReaderVersion: UInt16
    public var flags: UInt32
    /// Size of the whole container file.
    public var containerByteCount: Int
    /// Size of the GGUF file the container rebuilds.
    public var ggufByteCount: Int
    /// SHA-256 of the GGUF file the container rebuilds.
    public var ggufSHA256: [UInt8]
    /// Where the index frame starts, and its size including its 8-byte frame header.
    public var indexOffset: Int
    public var indexFrameByteCount: Int
    /// XXH3-64 of the index frame's content.
    public var indexChecksum: UInt64
    public var tensorCount: Int
    public var chunkCount: Int
    /// zstd frames holding chunk data (the seek table lists two more: the header and the index).
    public var dataFrameCount: Int

    public var ggufSHA256Hex: String { SHA256.hexString(ggufSHA256) }
}

/// One tensor of the GGUF file, as the index records it.
public struct ContainerTensor: Sendable, Equatable {
    public let name: String
    public let type: TensorType
    /// Where the tensor's bytes start in the GGUF file (absolute).
    public let ggufOffset: Int
    public let byteCount: Int
    /// The tensor's chunks, in order.
    public let chunks: Range<Int>
}

/// One chunk: a whole number of blocks of one tensor (or a piece of the GGUF's remaining bytes),
/// stored as one zstd frame per stream.
public struct ContainerChunk: Sendable, Equatable {
    /// The tensor the chunk belongs to, or nil for the GGUF's header and padding.
    public let tensor: Int?
    public let codec: UInt8
    /// 0 for plain bytes, otherwise 1 + the index of the chunk's ``StreamLayout`` in the index.
    public let layout: Int
    /// The chunk's data frames, counted from the first data frame.
    public let frames: Range<Int>
    /// Where the chunk's bytes start inside its tensor (or inside the remainder bytes).
    public let offset: Int
    public let byteCount: Int
    /// XXH3-64 of the chunk's original bytes.
    public let contentChecksum: UInt64
    /// XXH3-64 of the chunk's frames as stored.
    public let frameChecksum: UInt64
    /// Where the chunk's first frame starts in the container, and the bytes of all its frames.
    public let compressedOffset: Int
    public let compressedByteCount: Int
}

/// The decoded index: layouts, tensors and chunks, and per-frame sizes from the seek table.
struct ContainerIndex: Sendable {
    var layouts: [StreamLayout]
    var tensors: [ContainerTensor]
    var chunks: [ContainerChunk]
    var remainderByteCount: Int
    var seekTableChecksum: UInt64
}

// MARK: Little-endian writing

/// Appends little-endian fields to a byte array.
struct ByteWriter {
    var bytes: [UInt8] = []

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ data: [UInt8]) { bytes.append(contentsOf: data) }

    /// Overwrites a field written earlier.
    mutating func set<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeBytes(of: value.littleEndian) { field in
            for (index, byte) in field.enumerated() { bytes[offset + index] = byte }
        }
    }
}

// MARK: Little-endian reading

/// Reads little-endian fields from a buffer with every length checked; a short or bad field throws
/// a `StorageError` naming the structure (`what`) and the byte offset in the file.
struct ByteReader {
    let buffer: UnsafeRawBufferPointer
    /// Where `buffer` starts in the file, for messages.
    let fileOffset: Int
    let what: String
    private(set) var position = 0

    init(_ buffer: UnsafeRawBufferPointer, fileOffset: Int, what: String) {
        self.buffer = buffer
        self.fileOffset = fileOffset
        self.what = what
    }

    var remaining: Int { buffer.count - position }

    func failure(_ message: String, at position: Int? = nil) -> StorageError {
        StorageError(.malformed, "\(what) is damaged at byte \(fileOffset + (position ?? self.position)): \(message)")
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(StorageError) -> T {
        let width = MemoryLayout<T>.size
        guard remaining >= width else {
            throw failure("\(field) needs \(width) bytes but only \(remaining) remain")
        }
        let value = T(littleEndian: buffer.loadUnaligned(fromByteOffset: position, as: T.self))
        position += width
        return value
    }

    /// Reads an unsigned field that must fit in `Int` and be at most `limit`.
    mutating func count<T: FixedWidthInteger & UnsignedInteger>(_: T.Type, _ field: String, limit: Int = Int.max) throws(StorageError) -> Int {
        let start = position
        let value = try read(T.self, field)
        guard value <= UInt64(Int.max), Int(value) <= limit else {
            throw failure("\(field) is \(value), more than the \(limit) allowed", at: start)
        }
        return Int(value)
    }

    mutating func bytes(_ count: Int, _ field: String) throws(StorageError) -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else {
            throw failure("\(field) needs \(count) bytes but only \(remaining) remain")
        }
        let slice = UnsafeRawBufferPointer(rebasing: buffer[position..<(position + count)])
        position += count
        return slice
    }
}

// MARK: Header

extension ContainerHeader {
    /// The 128-byte header frame.
    func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.append(ContainerFormat.headerFrameMagic)
        writer.append(UInt32(ContainerFormat.headerContentByteCount))
        writer.append(ContainerFormat.magic)
        writer.append(formatVersion)
        writer.append(minimumReaderVersion)
        writer.append(flags)
        writer.append(UInt64(containerByteCount))
        writer.append(UInt64(ggufByteCount))
        writer.append(ggufSHA256)
        writer.append(UInt64(indexOffset))
        writer.append(UInt64(indexFrameByteCount))
        writer.append(indexChecksum)
        writer.append(UInt32(tensorCount))
        writer.append(UInt32(chunkCount))
        writer.append(UInt32(dataFrameCount))
        writer.append(UInt32(0))
        writer.append(UInt64(0))
        let checksum = writer.bytes.withUnsafeBytes { XXH3.hash(UnsafeRawBufferPointer(rebasing: $0[8..<120])) }
        writer.append(checksum)
        assert(writer.bytes.count == ContainerFormat.headerFrameByteCount)
        return writer.bytes
    }

    /// Parses and checks the header frame (the file's first 128 bytes).
    static func decode(_ frame: UnsafeRawBufferPointer, path: String) throws(StorageError) -> ContainerHeader {
        guard frame.count >= ContainerFormat.headerFrameByteCount else {
            throw StorageError(.truncated, "\(path) is \(frame.count) bytes, shorter than a container header (128 bytes); it is not a container or was cut short")
        }
        var reader = ByteReader(frame, fileOffset: 0, what: "the container header")
        let frameMagic = try reader.read(UInt32.self, "frame magic")
        let contentSize = try reader.read(UInt32.self, "frame size")
        let magic = Array(try reader.bytes(8, "magic"))
        guard frameMagic == ContainerFormat.headerFrameMagic, magic == ContainerFormat.magic else {
            throw StorageError(.notAContainer, "\(path) is not an Ember model container (no EMBERGGZ header); pack a GGUF with `ember pack`")
        }
        guard contentSize == ContainerFormat.headerContentByteCount else {
            throw reader.failure("the header frame says \(contentSize) bytes, version 1 writes 120", at: 4)
        }
        let stored = UInt64(littleEndian: frame.loadUnaligned(fromByteOffset: 120, as: UInt64.self))
        let computed = XXH3.hash(UnsafeRawBufferPointer(rebasing: frame[8..<120]))
        guard stored == computed else {
            throw StorageError(.checksumMismatch, "the container header (bytes 0..<128) is damaged: its checksum does not match; fetch the container again")
        }
        let formatVersion = try reader.read(UInt16.self, "format version")
        let minimumReaderVersion = try reader.read(UInt16.self, "minimum reader version")
        guard minimumReaderVersion <= ContainerFormat.version else {
            throw StorageError(.unsupportedVersion, "\(path) is a version \(formatVersion) container that needs a reader of version \(minimumReaderVersion); this Ember reads version \(ContainerFormat.version)")
        }
        let flags = try reader.read(UInt32.self, "flags")
        let containerByteCount = try reader.count(UInt64.self, "container size")
        let ggufByteCount = try reader.count(UInt64.self, "GGUF size")
        let sha = Array(try reader.bytes(32, "GGUF SHA-256"))
        let indexOffset = try reader.count(UInt64.self, "index offset")
        let indexFrameByteCount = try reader.count(UInt64.self, "index size")
        let indexChecksum = try reader.read(UInt64.self, "index checksum")
        let tensorCount = try reader.count(UInt32.self, "tensor count")
        let chunkCount = try reader.count(UInt32.self, "chunk count")
        let frameCount = try reader.count(UInt32.self, "frame count")
        let reserved32 = try reader.read(UInt32.self, "reserved")
        let reserved64 = try reader.read(UInt64.self, "reserved")
        guard flags == 0 else {
            throw StorageError(.unsupportedVersion, "\(path) sets header flags \(flags) that this Ember does not know; it was written by a newer version")
        }
        guard reserved32 == 0, reserved64 == 0 else {
            throw reader.failure("reserved header fields are not zero", at: 108)
        }
        return ContainerHeader(
            formatVersion: formatVersion, minimumReaderVersion: minimumReaderVersion, flags: flags,
            containerByteCount: containerByteCount, ggufByteCount: ggufByteCount, ggufSHA256: sha,
            indexOffset: indexOffset, indexFrameByteCount: indexFrameByteCount, indexChecksum: indexChecksum,
            tensorCount: tensorCount, chunkCount: chunkCount, dataFrameCount: frameCount)
    }
}

// MARK: Index

/// A chunk as the writer describes it.
struct ChunkRecord: Sendable {
    var tensor: UInt32
    var layout: Int
    var frameCount: Int
    var offset: Int
    var byteCount: Int
    var compressedByteCount: Int = 0
    var contentChecksum: UInt64 = 0
    var frameChecksum: UInt64 = 0
}

/// A tensor as the writer describes it.
struct TensorRecord: Sendable {
    var name: String
    var type: TensorType
    var ggufOffset: Int
    var byteCount: Int
    var firstChunk: Int
    var chunkCount: Int
}

enum IndexCodec {
    /// The index frame: skippable-frame header, then the content whose XXH3 the header records. Its
    /// size depends only on the counts and names, so the writer can reserve room for it first.
    static func encode(layouts: [StreamLayout], tensors: [TensorRecord], chunks: [ChunkRecord],
                       remainderByteCount: Int, seekTableChecksum: UInt64) -> (frame: [UInt8], checksum: UInt64) {
        var writer = ByteWriter()
        writer.append(ContainerFormat.indexFrameMagic)
        writer.append(UInt32(0))
        writer.append(ContainerFormat.indexMagic)
        writer.append(UInt32(layouts.count))
        writer.append(UInt32(tensors.count))
        writer.append(UInt32(chunks.count))
        writer.append(UInt64(remainderByteCount))
        writer.append(seekTableChecksum)
        for layout in layouts {
            writer.append(UInt16(layout.blockByteCount))
            writer.append(UInt16(layout.runs.count))
            for run in layout.runs {
                writer.append(UInt16(run.start))
                writer.append(UInt16(run.length))
            }
        }
        for tensor in tensors {
            let name = Array(tensor.name.utf8)
            writer.append(UInt16(name.count))
            writer.append(name)
            writer.append(tensor.type.rawValue)
            writer.append(UInt64(tensor.ggufOffset))
            writer.append(UInt64(tensor.byteCount))
            writer.append(UInt32(tensor.firstChunk))
            writer.append(UInt32(tensor.chunkCount))
        }
        for chunk in chunks {
            writer.append(chunk.tensor)
            writer.append(ContainerFormat.codecZstd)
            writer.append(UInt8(chunk.frameCount))
            writer.append(UInt16(chunk.layout))
            writer.append(UInt64(chunk.offset))
            writer.append(UInt64(chunk.byteCount))
            writer.append(UInt64(chunk.compressedByteCount))
            writer.append(chunk.contentChecksum)
            writer.append(chunk.frameChecksum)
        }
        writer.set(UInt32(writer.bytes.count - 8), at: 4)
        let checksum = writer.bytes.withUnsafeBytes { XXH3.hash(UnsafeRawBufferPointer(rebasing: $0[8...])) }
        return (writer.bytes, checksum)
    }

    /// Parses the index frame's content (already checked against the header's checksum) and checks
    /// every count, offset and length: tensors in GGUF order without overlap, chunks covering each
    /// tensor and the remainder exactly once in whole blocks, frames and data offsets in sequence.
    static func decode(_ content: UnsafeRawBufferPointer, header: ContainerHeader) throws(StorageError) -> ContainerIndex {
        let contentOffset = header.indexOffset + 8
        var reader = ByteReader(content, fileOffset: contentOffset, what: "the container index")
        guard Array(try reader.bytes(4, "index magic")) == ContainerFormat.indexMagic else {
            throw reader.failure("the index does not start with GGZI", at: 0)
        }
        let layoutCount = try reader.count(UInt32.self, "layout count", limit: 4096)
        let tensorCount = try reader.count(UInt32.self, "tensor count", limit: content.count / 30)
        let chunkCount = try reader.count(UInt32.self, "chunk count", limit: content.count / ContainerFormat.chunkRecordByteCount)
        guard tensorCount == header.tensorCount, chunkCount == header.chunkCount else {
            throw reader.failure("it lists \(tensorCount) tensors and \(chunkCount) chunks, the header \(header.tensorCount) and \(header.chunkCount)", at: 8)
        }
        let remainderByteCount = try reader.count(UInt64.self, "remainder size", limit: header.ggufByteCount)
        let seekTableChecksum = try reader.read(UInt64.self, "seek table checksum")

        var layouts: [StreamLayout] = []
        for layoutIndex in 0..<layoutCount {
            let start = reader.position
            let blockByteCount = try reader.count(UInt16.self, "layout \(layoutIndex) block size")
            let runCount = try reader.count(UInt16.self, "layout \(layoutIndex) run count", limit: StreamLayout.maximumRunCount)
            var runs: [StreamLayout.Run] = []
            for _ in 0..<runCount {
                let runStart = try reader.count(UInt16.self, "layout \(layoutIndex) run start")
                let runLength = try reader.count(UInt16.self, "layout \(layoutIndex) run length")
                runs.append(StreamLayout.Run(start: runStart, length: runLength))
            }
            guard let layout = StreamLayout(blockByteCount: blockByteCount, runs: runs) else {
                throw reader.failure("layout \(layoutIndex) does not split its \(blockByteCount)-byte block into runs covering each byte once", at: start)
            }
            layouts.append(layout)
        }

        var records: [TensorRecord] = []
        records.reserveCapacity(tensorCount)
        var seenNames: Set<String> = []
        for tensorIndex in 0..<tensorCount {
            let start = reader.position
            let nameLength = try reader.count(UInt16.self, "tensor \(tensorIndex) name length", limit: ContainerFormat.maximumNameByteCount)
            let nameBytes = try reader.bytes(nameLength, "tensor \(tensorIndex) name")
            guard let name = String(validating: nameBytes, as: UTF8.self) else {
                throw reader.failure("tensor \(tensorIndex)'s name is not UTF-8", at: start)
            }
            guard seenNames.insert(name).inserted else {
                throw reader.failure("tensor '\(name)' is listed twice", at: start)
            }
            let rawType = try reader.read(UInt32.self, "tensor '\(name)' type")
            guard let type = TensorType(rawValue: rawType) else {
                throw reader.failure("tensor '\(name)' has unknown GGML type \(rawType)", at: start)
            }
            let ggufOffset = try reader.count(UInt64.self, "tensor '\(name)' offset", limit: header.ggufByteCount)
            let byteCount = try reader.count(UInt64.self, "tensor '\(name)' size", limit: header.ggufByteCount - ggufOffset)
            guard byteCount % type.bytesPerBlock == 0 else {
                throw reader.failure("tensor '\(name)' has \(byteCount) bytes, not whole \(type) blocks of \(type.bytesPerBlock)", at: start)
            }
            let firstChunk = try reader.count(UInt32.self, "tensor '\(name)' first chunk", limit: chunkCount)
            let tensorChunkCount = try reader.count(UInt32.self, "tensor '\(name)' chunk count", limit: chunkCount - firstChunk)
            if let previous = records.last, previous.ggufOffset + previous.byteCount > ggufOffset {
                throw reader.failure("tensor '\(name)' starts at GGUF byte \(ggufOffset), inside or before tensor '\(previous.name)'", at: start)
            }
            guard (byteCount == 0) == (tensorChunkCount == 0) else {
                throw reader.failure("tensor '\(name)' has \(byteCount) bytes in \(tensorChunkCount) chunks", at: start)
            }
            records.append(TensorRecord(name: name, type: type, ggufOffset: ggufOffset, byteCount: byteCount,
                                        firstChunk: firstChunk, chunkCount: tensorChunkCount))
        }
        let tensorBytes = records.reduce(0) { $0 + $1.byteCount }
        guard tensorBytes + remainderByteCount == header.ggufByteCount else {
            throw reader.failure("tensors (\(tensorBytes) bytes) and remainder (\(remainderByteCount)) do not add up to the GGUF's \(header.ggufByteCount) bytes")
        }

        // Chunks: first the remainder's, then each tensor's in tensor order.
        var owner: [UInt32] = []
        owner.reserveCapacity(chunkCount)
        for (tensorIndex, record) in records.enumerated() where record.chunkCount > 0 {
            if owner.isEmpty {
                owner = [UInt32](repeating: ContainerFormat.remainderTensor, count: record.firstChunk)
            }
            guard record.firstChunk == owner.count else {
                throw reader.failure("tensor '\(record.name)' starts at chunk \(record.firstChunk), expected \(owner.count): chunks follow the remainder's, then the tensors' in order")
            }
            owner += [UInt32](repeating: UInt32(tensorIndex), count: record.chunkCount)
        }
        if owner.isEmpty { owner = [UInt32](repeating: ContainerFormat.remainderTensor, count: chunkCount) }
        guard owner.count == chunkCount else {
            throw reader.failure("the tensors' chunks end at \(owner.count) but the index has \(chunkCount)")
        }
        guard reader.remaining == chunkCount * ContainerFormat.chunkRecordByteCount else {
            throw reader.failure("\(reader.remaining) bytes remain for \(chunkCount) chunk records of 48 bytes")
        }

        var chunks: [ContainerChunk] = []
        chunks.reserveCapacity(chunkCount)
        var nextFrame = 0
        var nextOffset = 0
        var compressedOffset = header.indexOffset + header.indexFrameByteCount
        for chunkIndex in 0..<chunkCount {
            let start = reader.position
            let tensorField = try reader.read(UInt32.self, "chunk \(chunkIndex) tensor")
            let codec = try reader.read(UInt8.self, "chunk \(chunkIndex) codec")
            let frameCount = Int(try reader.read(UInt8.self, "chunk \(chunkIndex) frame count"))
            let layoutNumber = try reader.count(UInt16.self, "chunk \(chunkIndex) layout", limit: layouts.count)
            let offset = try reader.count(UInt64.self, "chunk \(chunkIndex) offset")
            let byteCount = try reader.count(UInt64.self, "chunk \(chunkIndex) size", limit: ContainerFormat.maximumChunkByteCount)
            let compressedByteCount = try reader.count(UInt64.self, "chunk \(chunkIndex) stored size", limit: 2 * ContainerFormat.maximumChunkByteCount)
            let contentChecksum = try reader.read(UInt64.self, "chunk \(chunkIndex) checksum")
            let frameChecksum = try reader.read(UInt64.self, "chunk \(chunkIndex) frame checksum")

            let tensorIndex = owner[chunkIndex] == ContainerFormat.remainderTensor ? nil : Int(owner[chunkIndex])
            let tensorName = tensorIndex.map { records[$0].name }
            let place = StorageError.place(chunk: chunkIndex, tensor: tensorName)
            func bad(_ message: String) -> StorageError {
                StorageError(.malformed, "the container index is damaged at byte \(contentOffset + start) (\(place)): \(message)",
                             chunk: chunkIndex, tensor: tensorName)
            }
            guard tensorField == owner[chunkIndex] else {
                throw bad("it names tensor \(tensorField), the tensor table \(owner[chunkIndex])")
            }
            guard codec == ContainerFormat.codecZstd else {
                throw StorageError(.unsupportedVersion, "\(place) uses codec \(codec); this Ember knows only zstd (1)",
                                   chunk: chunkIndex, tensor: tensorName)
            }
            if chunkIndex == 0 || owner[chunkIndex] != owner[chunkIndex - 1] { nextOffset = 0 }
            guard offset == nextOffset else {
                throw bad("it starts at byte \(offset), expected \(nextOffset): chunks follow each other without gaps")
            }
            guard byteCount > 0, compressedByteCount > 0 else { throw bad("it is empty") }
            nextOffset += byteCount
            let unitByteCount: Int
            let ownerByteCount: Int
            if let tensorIndex {
                unitByteCount = records[tensorIndex].type.bytesPerBlock
                ownerByteCount = records[tensorIndex].byteCount
            } else {
                guard layoutNumber == 0 else { throw bad("header and padding chunks hold plain bytes, not a stream layout") }
                unitByteCount = 1
                ownerByteCount = remainderByteCount
            }
            guard nextOffset <= ownerByteCount else { throw bad("it ends at byte \(nextOffset), past the \(ownerByteCount) bytes it belongs to") }
            let isLast = chunkIndex + 1 == chunkCount || owner[chunkIndex + 1] != owner[chunkIndex]
            guard !isLast || nextOffset == ownerByteCount else {
                throw bad("it is the last chunk but ends at byte \(nextOffset) of \(ownerByteCount)")
            }
            guard byteCount % unitByteCount == 0 else { throw bad("\(byteCount) bytes are not whole \(unitByteCount)-byte blocks") }
            let streamCount: Int
            if layoutNumber == 0 {
                streamCount = 1
            } else {
                let layout = layouts[layoutNumber - 1]
                guard layout.blockByteCount == unitByteCount else {
                    throw bad("its layout has \(layout.blockByteCount)-byte blocks, the tensor's type \(unitByteCount)")
                }
                streamCount = layout.runs.count
            }
            guard frameCount == streamCount else { throw bad("it has \(frameCount) frames for \(streamCount) streams") }
            chunks.append(ContainerChunk(
                tensor: tensorIndex, codec: codec, layout: layoutNumber, frames: nextFrame..<(nextFrame + frameCount),
                offset: offset, byteCount: byteCount, contentChecksum: contentChecksum, frameChecksum: frameChecksum,
                compressedOffset: compressedOffset, compressedByteCount: compressedByteCount))
            nextFrame += frameCount
            compressedOffset += compressedByteCount
        }
        guard nextFrame == header.dataFrameCount else {
            throw reader.failure("the chunks have \(nextFrame) frames, the header says \(header.dataFrameCount)")
        }
        let tensors = records.map { record in
            ContainerTensor(name: record.name, type: record.type, ggufOffset: record.ggufOffset, byteCount: record.byteCount,
                            chunks: record.firstChunk..<(record.firstChunk + record.chunkCount))
        }
        return ContainerIndex(layouts: layouts, tensors: tensors, chunks: chunks,
                              remainderByteCount: remainderByteCount, seekTableChecksum: seekTableChecksum)
    }
}

// MARK: Seek table

/// The zstd seekable format's seek table: a skippable frame at the end of the file listing every
/// frame before it (compressed size, decompressed size), then a 9-byte footer.
struct SeekTable: Sendable {
    var compressedSizes: [Int]
    var decompressedSizes: [Int]

    func encoded() -> [UInt8] {
        var writer = ByteWriter()
        writer.append(ContainerFormat.seekTableFrameMagic)
        writer.append(UInt32(compressedSizes.count * 8 + ContainerFormat.seekFooterByteCount))
        for (compressed, decompressed) in zip(compressedSizes, decompressedSizes) {
            writer.append(UInt32(compressed))
            writer.append(UInt32(decompressed))
        }
        writer.append(UInt32(compressedSizes.count))
        writer.append(UInt8(0))
        writer.append(ContainerFormat.seekableMagic)
        return writer.bytes
    }

    /// Bytes of the seek table frame for `frameCount` entries.
    static func byteCount(frameCount: Int) -> Int { 8 + frameCount * 8 + ContainerFormat.seekFooterByteCount }

    /// Parses a seek table frame of `dataFrameCount + 2` entries (header, index, data frames).
    static func decode(_ frame: UnsafeRawBufferPointer, fileOffset: Int, dataFrameCount: Int) throws(StorageError) -> SeekTable {
        var reader = ByteReader(frame, fileOffset: fileOffset, what: "the seek table")
        let frameCount = dataFrameCount + 2
        guard try reader.read(UInt32.self, "frame magic") == ContainerFormat.seekTableFrameMagic else {
            throw reader.failure("it does not start with the seekable format's skippable-frame magic", at: 0)
        }
        guard try reader.count(UInt32.self, "frame size") == frame.count - 8 else {
            throw reader.failure("its frame size does not match \(frameCount) entries", at: 4)
        }
        var table = SeekTable(compressedSizes: [], decompressedSizes: [])
        table.compressedSizes.reserveCapacity(frameCount)
        table.decompressedSizes.reserveCapacity(frameCount)
        for entry in 0..<frameCount {
            table.compressedSizes.append(try reader.count(UInt32.self, "entry \(entry) compressed size"))
            table.decompressedSizes.append(try reader.count(UInt32.self, "entry \(entry) decompressed size"))
        }
        guard try reader.count(UInt32.self, "frame count") == frameCount else {
            throw reader.failure("its footer does not count \(frameCount) frames")
        }
        guard try reader.read(UInt8.self, "descriptor") == 0 else {
            throw reader.failure("its descriptor has flags version 1 does not write")
        }
        guard try reader.read(UInt32.self, "seekable magic") == ContainerFormat.seekableMagic else {
            throw reader.failure("its footer lacks the seekable format's magic")
        }
        return table
    }
}

import EmberCore
import EmberGGUF
import EmberKernels
import Synchronization

/// A compressed model container (docs/FORMAT.md), opened for reading.
///
/// Opening maps the file read-only and checks its structure — header checksum, index checksum,
/// seek table checksum, every count, offset and length — but decodes nothing. Each chunk is checked
/// when it is decoded: zstd's frame structure, the size of every stream, and the XXH3-64 of the
/// original bytes, so a flipped byte is never loaded silently; the error names the chunk and its
/// tensor.
///
/// Three ways to load:
/// - ``readTensor(named:into:)`` decodes one tensor (what a loader that streams weights uses; see
///   ``TensorPager`` for an LRU cache under a memory budget with prefetch);
/// - ``loadGGUF(threads:)`` decodes every chunk in parallel into one buffer and returns a `GGUFFile`
///   over it, as if the GGUF had been read from disk;
/// - ``reconstructGGUF(to:threads:progress:)`` writes the original GGUF byte for byte and checks its
///   SHA-256.
///
/// ```swift
/// let container = try ModelContainer(path: "smollm2.ggz")
/// let bytes = try container.readTensor(named: "blk.0.attn_q.weight")
/// let gguf = try container.loadGGUF(threads: 2)
/// ```
///
/// `@unchecked Sendable`: every property is immutable after `init`; the mapping lives until `deinit`;
/// decoders are handed out one per thread from a pool guarded by a mutex.
public final class ModelContainer: @unchecked Sendable {
    public let path: String
    public let header: ContainerHeader
    /// Tensors in GGUF file order.
    public let tensors: [ContainerTensor]
    public let chunks: [ContainerChunk]
    public let layouts: [StreamLayout]
    /// Bytes of the GGUF outside every tensor: its header, alignment padding and any trailing bytes.
    public let remainderByteCount: Int
    let file: MappedFile
    /// Per data frame: where it starts in the container, its stored and decoded sizes.
    let frameOffsets: [Int]
    let frameCompressedSizes: [Int]
    let frameDecompressedSizes: [Int]
    /// The GGUF ranges outside every tensor, in file order, with their offsets in the remainder.
    let remainderPieces: [RemainderPiece]
    private let tensorIndex: [String: Int]
    private let decoders = Mutex<[ChunkDecoder]>([])

    struct RemainderPiece: Sendable {
        var remainderOffset: Int
        var ggufOffset: Int
        var byteCount: Int
    }

    /// Opens and checks the container at `path`.
    public convenience init(path: String) throws(StorageError) {
        try self.init(file: MappedFile(path: path), path: path)
    }

    /// Opens a container held in memory (tests, fuzzing).
    public convenience init(bytes: [UInt8]) throws(StorageError) {
        try self.init(file: MappedFile(bytes: bytes), path: "the container")
    }

    init(file: MappedFile, path: String) throws(StorageError) {
        self.file = file
        self.path = path
        let size = file.byteCount
        let header = try ContainerHeader.decode(file.slice(0..<min(size, ContainerFormat.headerFrameByteCount)), path: path)
        self.header = header

        // Where the parts must lie, from the header.
        guard header.indexOffset == ContainerFormat.headerFrameByteCount,
              header.indexFrameByteCount >= 8 + 32,
              header.dataFrameCount <= Int(UInt32.max) - 2
        else {
            throw StorageError(.malformed, "the container header of \(path) is inconsistent: index at \(header.indexOffset), \(header.indexFrameByteCount) bytes")
        }
        let seekTableByteCount = SeekTable.byteCount(frameCount: header.dataFrameCount + 2)
        let indexEnd = header.indexOffset.addingReportingOverflow(header.indexFrameByteCount)
        guard !indexEnd.overflow, indexEnd.partialValue <= header.containerByteCount - seekTableByteCount else {
            throw StorageError(.malformed, "the container header of \(path) puts the index past the end of the file")
        }
        guard size >= indexEnd.partialValue else {
            throw StorageError(.truncated, "\(path) is \(size) bytes but its header says \(header.containerByteCount): the file was cut short inside its index; fetch it again")
        }

        // The index, checked against the header, then parsed.
        let indexFrame = file.slice(header.indexOffset..<indexEnd.partialValue)
        let indexMagic = UInt32(littleEndian: indexFrame.loadUnaligned(as: UInt32.self))
        let indexSize = UInt32(littleEndian: indexFrame.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        guard indexMagic == ContainerFormat.indexFrameMagic, Int(indexSize) == header.indexFrameByteCount - 8 else {
            throw StorageError(.malformed, "the container index of \(path) (bytes \(header.indexOffset)..<\(indexEnd.partialValue)) is damaged: its frame header is wrong; fetch the container again")
        }
        let indexContent = UnsafeRawBufferPointer(rebasing: indexFrame[8...])
        guard XXH3.hash(indexContent) == header.indexChecksum else {
            throw StorageError(.checksumMismatch, "the container index of \(path) (bytes \(header.indexOffset)..<\(indexEnd.partialValue)) is damaged: its checksum does not match; fetch the container again")
        }
        let index = try IndexCodec.decode(indexContent, header: header)
        let dataEnd = index.chunks.last.map { $0.compressedOffset + $0.compressedByteCount } ?? indexEnd.partialValue

        // The file's size: a short file names the first chunk it lost.
        if size < header.containerByteCount {
            if let lost = index.chunks.firstIndex(where: { $0.compressedOffset + $0.compressedByteCount > size }) {
                let tensor = index.chunks[lost].tensor.map { index.tensors[$0].name }
                throw StorageError(.truncated, "\(path) is \(size) bytes but its header says \(header.containerByteCount): the file was cut short inside \(StorageError.place(chunk: lost, tensor: tensor)); \(index.chunks.count - lost) of \(index.chunks.count) chunks are missing or incomplete. Fetch it again",
                                   chunk: lost, tensor: tensor)
            }
            throw StorageError(.truncated, "\(path) is \(size) bytes but its header says \(header.containerByteCount): the file was cut short inside its seek table; fetch it again")
        }
        guard size == header.containerByteCount else {
            throw StorageError(.malformed, "\(path) is \(size) bytes but its header says \(header.containerByteCount): \(size - header.containerByteCount) bytes were appended after its end")
        }
        guard dataEnd == size - seekTableByteCount else {
            throw StorageError(.malformed, "the container index of \(path) puts the chunks' end at byte \(dataEnd), but the seek table starts at \(size - seekTableByteCount)")
        }

        // The seek table, checked against the index.
        let seekFrame = file.slice(dataEnd..<size)
        guard XXH3.hash(seekFrame) == index.seekTableChecksum else {
            throw StorageError(.checksumMismatch, "the seek table of \(path) (bytes \(dataEnd)..<\(size)) is damaged: its checksum does not match; fetch the container again")
        }
        let table = try SeekTable.decode(seekFrame, fileOffset: dataEnd, dataFrameCount: header.dataFrameCount)
        guard table.compressedSizes[0] == ContainerFormat.headerFrameByteCount, table.decompressedSizes[0] == 0,
              table.compressedSizes[1] == header.indexFrameByteCount, table.decompressedSizes[1] == 0
        else {
            throw StorageError(.malformed, "the seek table of \(path) does not list the header and index frames first")
        }
        let compressed = Array(table.compressedSizes.dropFirst(2))
        let decompressed = Array(table.decompressedSizes.dropFirst(2))
        var offsets: [Int] = []
        offsets.reserveCapacity(compressed.count)
        var offset = indexEnd.partialValue
        for size in compressed {
            offsets.append(offset)
            offset += size
        }
        for (chunkIndex, chunk) in index.chunks.enumerated() {
            let tensor = chunk.tensor.map { index.tensors[$0].name }
            let stored = compressed[chunk.frames].reduce(0, +)
            var expected = [chunk.byteCount]
            if chunk.layout > 0 {
                let layout = index.layouts[chunk.layout - 1]
                expected = layout.runs.map { $0.length * (chunk.byteCount / layout.blockByteCount) }
            }
            guard stored == chunk.compressedByteCount, offsets[chunk.frames.lowerBound] == chunk.compressedOffset,
                  Array(decompressed[chunk.frames]) == expected, !compressed[chunk.frames].contains(0)
            else {
                throw StorageError(.malformed, "the seek table of \(path) disagrees with the index about \(StorageError.place(chunk: chunkIndex, tensor: tensor))",
                                   chunk: chunkIndex, tensor: tensor)
            }
        }
        frameOffsets = offsets
        frameCompressedSizes = compressed
        frameDecompressedSizes = decompressed

        tensors = index.tensors
        chunks = index.chunks
        layouts = index.layouts
        remainderByteCount = index.remainderByteCount
        var names: [String: Int] = [:]
        for (position, tensor) in index.tensors.enumerated() { names[tensor.name] = position }
        tensorIndex = names
        var pieces: [RemainderPiece] = []
        var cursor = 0
        var remainderOffset = 0
        for tensor in index.tensors {
            if tensor.ggufOffset > cursor {
                pieces.append(RemainderPiece(remainderOffset: remainderOffset, ggufOffset: cursor, byteCount: tensor.ggufOffset - cursor))
                remainderOffset += tensor.ggufOffset - cursor
            }
            cursor = max(cursor, tensor.ggufOffset + tensor.byteCount)
        }
        if cursor < header.ggufByteCount {
            pieces.append(RemainderPiece(remainderOffset: remainderOffset, ggufOffset: cursor, byteCount: header.ggufByteCount - cursor))
        }
        remainderPieces = pieces
    }

    // MARK: Looking up

    /// Tensor names in GGUF file order.
    public var tensorNames: [String] { tensors.map(\.name) }

    /// The tensor called `name`, if the container has one.
    public func tensor(named name: String) -> ContainerTensor? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The name of the tensor chunk `index` belongs to (nil for header and padding chunks).
    public func tensorName(ofChunk index: Int) -> String? {
        chunks[index].tensor.map { tensors[$0].name }
    }

    /// The stored bytes of chunk `index` (all its frames).
    public func storedBytes(ofChunk index: Int) -> UnsafeRawBufferPointer {
        let chunk = chunks[index]
        return file.slice(chunk.compressedOffset..<(chunk.compressedOffset + chunk.compressedByteCount))
    }

    // MARK: Decoding

    /// Runs `body` with a decoder from the pool, returning it afterwards.
    public func withDecoder<R, E: Error>(_ body: (ChunkDecoder) throws(E) -> R) throws(E) -> R {
        let pooled = decoders.withLock { $0.popLast() }
        let decoder: ChunkDecoder
        if let pooled {
            decoder = pooled
        } else {
            do { decoder = try ChunkDecoder() } catch { fatalError("\(error)") }
        }
        defer { decoders.withLock { $0.append(decoder) } }
        return try body(decoder)
    }

    /// Decodes chunk `index` into `destination` (exactly the chunk's size) and checks it: every frame
    /// must decode to its stream's size and the result must have the chunk's XXH3-64.
    public func decodeChunk(_ index: Int, into destination: UnsafeMutableRawBufferPointer, decoder: ChunkDecoder) throws(StorageError) {
        let chunk = chunks[index]
        precondition(destination.count == chunk.byteCount, "chunk \(index) holds \(chunk.byteCount) bytes, not \(destination.count)")
        func failure(_ code: StorageError.Code, _ message: String) -> StorageError {
            let tensor = tensorName(ofChunk: index)
            return StorageError(code, "\(path): \(StorageError.place(chunk: index, tensor: tensor)) is damaged: \(message); fetch the container again",
                                chunk: index, tensor: tensor)
        }
        let checksum: UInt64
        if chunk.layout == 0 {
            let frame = chunk.frames.lowerBound
            if let problem = decoder.decodeFrame(file.slice(frameOffsets[frame]..<(frameOffsets[frame] + frameCompressedSizes[frame])), into: destination) {
                throw failure(.decodeFailed, "zstd cannot decode it (\(problem))")
            }
            checksum = XXH3.hash(UnsafeRawBufferPointer(destination))
        } else {
            let layout = layouts[chunk.layout - 1]
            let scratch = decoder.scratch(byteCount: chunk.byteCount)
            var written = 0
            for (stream, frame) in chunk.frames.enumerated() {
                let size = frameDecompressedSizes[frame]
                let target = UnsafeMutableRawBufferPointer(start: scratch + written, count: size)
                if let problem = decoder.decodeFrame(file.slice(frameOffsets[frame]..<(frameOffsets[frame] + frameCompressedSizes[frame])), into: target) {
                    throw failure(.decodeFailed, "zstd cannot decode stream \(stream) (\(problem))")
                }
                written += size
            }
            checksum = layout.ungroupAndHash(scratch, blockCount: chunk.byteCount / layout.blockByteCount, into: destination.baseAddress!)
        }
        guard checksum == chunk.contentChecksum else {
            throw failure(.checksumMismatch, "its decoded bytes do not match their checksum")
        }
    }

    /// Checks chunk `index`'s stored bytes against the XXH3-64 the index records for them.
    public func checkStoredBytes(ofChunk index: Int) throws(StorageError) {
        guard XXH3.hash(storedBytes(ofChunk: index)) == chunks[index].frameChecksum else {
            let tensor = tensorName(ofChunk: index)
            throw StorageError(.checksumMismatch, "\(path): \(StorageError.place(chunk: index, tensor: tensor)) is damaged: its stored bytes do not match their checksum; fetch the container again",
                               chunk: index, tensor: tensor)
        }
    }

    /// Decodes `indices` on `threads` threads; `destination(chunk)` gives where each chunk's bytes go
    /// (distinct for each chunk). Stops at the first damaged chunk and throws its error.
    func decodeChunks(_ indices: [Int], threads: Int, destination: (Int) -> UnsafeMutableRawBufferPointer) throws(StorageError) {
        let failures = decodeChunks(indices, threads: threads, stopAtFirstFailure: true, checkStoredBytes: false, destination: destination)
        if let first = failures.min(by: { $0.key < $1.key }) { throw first.value }
    }

    /// Decodes `indices` on `threads` threads (pulling chunks from a shared counter, so uneven chunks
    /// balance) and returns the failures by chunk index.
    func decodeChunks(_ indices: [Int], threads: Int, stopAtFirstFailure: Bool, checkStoredBytes: Bool, pool: ThreadPool? = nil,
                      destination: (Int) -> UnsafeMutableRawBufferPointer) -> [Int: StorageError] {
        let threadCount = max(1, min(pool?.threadCount ?? threads, indices.count))
        let next = Atomic<Int>(0)
        let failures = Mutex<[Int: StorageError]>([:])
        func work(_ decoder: ChunkDecoder) {
            while true {
                let position = next.add(1, ordering: .relaxed).oldValue
                guard position < indices.count else { return }
                if stopAtFirstFailure, !failures.withLock({ $0.isEmpty }) { return }
                let index = indices[position]
                do throws(StorageError) {
                    if checkStoredBytes { try self.checkStoredBytes(ofChunk: index) }
                    try self.decodeChunk(index, into: destination(index), decoder: decoder)
                } catch {
                    failures.withLock { $0[index] = error }
                }
            }
        }
        if threadCount == 1 {
            withDecoder(work)
        } else {
            (pool ?? ThreadPool(threadCount: threadCount)).parallelFor(threadCount) { _, _ in withDecoder(work) }
        }
        return failures.withLock { $0 }
    }

    /// Decodes tensor `name` into `destination` (exactly the tensor's size), on `threads` threads.
    public func readTensor(named name: String, into destination: UnsafeMutableRawBufferPointer, threads: Int = 1) throws(StorageError) {
        guard let tensor = tensor(named: name) else {
            throw StorageError(.unknownTensor, "\(path) has no tensor named '\(name)'")
        }
        precondition(destination.count == tensor.byteCount, "tensor '\(name)' holds \(tensor.byteCount) bytes, not \(destination.count)")
        try decodeChunks(Array(tensor.chunks), threads: threads) { index in
            let chunk = chunks[index]
            return UnsafeMutableRawBufferPointer(rebasing: destination[chunk.offset..<(chunk.offset + chunk.byteCount)])
        }
    }

    /// The bytes of tensor `name`, exactly as the GGUF holds them.
    public func readTensor(named name: String) throws(StorageError) -> [UInt8] {
        guard let tensor = tensor(named: name) else {
            throw StorageError(.unknownTensor, "\(path) has no tensor named '\(name)'")
        }
        var bytes = [UInt8](repeating: 0, count: tensor.byteCount)
        var failure: StorageError?
        bytes.withUnsafeMutableBytes { buffer in
            do throws(StorageError) { try readTensor(named: name, into: buffer) } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    /// The GGUF bytes outside every tensor (its header, padding, trailing bytes), in file order.
    public func remainderBytes() throws(StorageError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: remainderByteCount)
        let indices = chunks.indices.filter { chunks[$0].tensor == nil }
        var failure: StorageError?
        bytes.withUnsafeMutableBytes { buffer in
            do throws(StorageError) {
                try decodeChunks(indices, threads: 1) { index in
                    let chunk = chunks[index]
                    return UnsafeMutableRawBufferPointer(rebasing: buffer[chunk.offset..<(chunk.offset + chunk.byteCount)])
                }
            } catch { failure = error }
        }
        if let failure { throw failure }
        return bytes
    }

    /// The GGUF's header bytes: everything before its first tensor (metadata and tensor table).
    public func ggufHeaderBytes() throws(StorageError) -> [UInt8] {
        let remainder = try remainderBytes()
        guard let first = remainderPieces.first, first.ggufOffset == 0 else { return [] }
        return Array(remainder[0..<first.byteCount])
    }

    /// The GGUF's metadata and tensor table, decoded from the container's header chunks only, and
    /// checked against the index: the same tensors, types, offsets and sizes.
    public func ggufHeader() throws(StorageError) -> GGUFFileHeader {
        let bytes = try ggufHeaderBytes()
        return try checkedHeader(bytes)
    }

    /// Parses GGUF header bytes and checks that the index describes the same tensors.
    func checkedHeader(_ bytes: [UInt8]) throws(StorageError) -> GGUFFileHeader {
        let header: GGUFFileHeader
        do {
            header = try bytes.withUnsafeBytes { buffer throws(GGUFError) in
                try GGUFFile.parseHeader(buffer, fileSize: self.header.ggufByteCount)
            }
        } catch {
            throw StorageError(.malformed, "\(path): the GGUF header it holds cannot be read: \(error)")
        }
        let fromGGUF = header.tensors.sorted { $0.offset < $1.offset }
        guard fromGGUF.count == tensors.count else {
            throw StorageError(.malformed, "\(path): its index lists \(tensors.count) tensors, the GGUF header \(fromGGUF.count)")
        }
        for (info, tensor) in zip(fromGGUF, tensors) {
            guard info.name == tensor.name, info.type == tensor.type, header.dataOffset + info.offset == tensor.ggufOffset,
                  info.byteCount == tensor.byteCount
            else {
                throw StorageError(.malformed, "\(path): its index says tensor '\(tensor.name)' is \(tensor.type) at byte \(tensor.ggufOffset), the GGUF header says '\(info.name)' is \(info.type) at byte \(header.dataOffset + info.offset)")
            }
        }
        return header
    }

    /// Copies the remainder bytes `remainder` (the whole remainder, in order) into their GGUF places in `image`.
    func scatterRemainder(_ remainder: UnsafeRawBufferPointer, into image: UnsafeMutableRawPointer) {
        for piece in remainderPieces {
            (image + piece.ggufOffset).copyMemory(from: remainder.baseAddress! + piece.remainderOffset, byteCount: piece.byteCount)
        }
    }

    /// Decodes the whole GGUF into `image` (exactly ``ContainerHeader/ggufByteCount`` bytes) on
    /// `threads` threads, checking every chunk.
    public func decodeGGUF(into image: UnsafeMutableRawBufferPointer, threads: Int = 2) throws(StorageError) {
        precondition(image.count == header.ggufByteCount, "the GGUF has \(header.ggufByteCount) bytes, not \(image.count)")
        let remainder = UnsafeMutableRawBufferPointer.allocate(byteCount: max(remainderByteCount, 1), alignment: 64)
        defer { remainder.deallocate() }
        try decodeChunks(Array(chunks.indices), threads: threads) { index in
            let chunk = chunks[index]
            if let tensor = chunk.tensor {
                let start = tensors[tensor].ggufOffset + chunk.offset
                return UnsafeMutableRawBufferPointer(rebasing: image[start..<(start + chunk.byteCount)])
            }
            return UnsafeMutableRawBufferPointer(rebasing: remainder[chunk.offset..<(chunk.offset + chunk.byteCount)])
        }
        scatterRemainder(UnsafeRawBufferPointer(remainder), into: image.baseAddress!)
    }

    /// Decodes every chunk in parallel into one buffer and opens it as a GGUF file — loading a model
    /// straight from the container, all at once. Every chunk's checksum is checked; the whole file's
    /// SHA-256 only when `checkSHA256` is set (it costs more than decoding).
    public func loadGGUF(threads: Int = 2, checkSHA256: Bool = false) throws(StorageError) -> GGUFFile {
        let image = UnsafeMutableRawBufferPointer.allocate(byteCount: max(header.ggufByteCount, 1), alignment: 64)
        do throws(StorageError) {
            let view = UnsafeMutableRawBufferPointer(rebasing: image[0..<header.ggufByteCount])
            try decodeGGUF(into: view, threads: threads)
            if checkSHA256 {
                var hasher = SHA256()
                hasher.update(UnsafeRawBufferPointer(view))
                guard hasher.finalize() == header.ggufSHA256 else {
                    throw StorageError(.checksumMismatch, "\(path): the decoded GGUF does not have the SHA-256 the container records")
                }
            }
        } catch {
            image.deallocate()
            throw error
        }
        do {
            return try GGUFFile(adopting: image, byteCount: header.ggufByteCount)
        } catch {
            throw StorageError(.invalidModel, "\(path) decodes to a GGUF Ember cannot read: \(error)")
        }
    }
}

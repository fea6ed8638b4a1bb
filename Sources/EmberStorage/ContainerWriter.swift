import EmberCore
import EmberGGUF
import EmberKernels
import Synchronization

/// Packs a GGUF file into a container (docs/FORMAT.md).
///
/// Each tensor is cut into chunks of about ``chunkByteCount`` bytes of whole blocks; each chunk's
/// blocks are split into the byte streams of its type's ``StreamLayout`` and every stream becomes one
/// zstd frame. The GGUF's bytes outside the tensors (header, padding) form their own chunks. Chunks
/// are compressed on ``threads`` threads and written in order, so the output does not depend on the
/// thread count.
///
/// ```swift
/// let summary = try ContainerWriter(level: 19).pack(ggufPath: "model.gguf", to: "model.ggz")
/// ```
public struct ContainerWriter: Sendable {
    /// zstd level of metadata and side streams (scales, exponents), 1...19.
    public var level: Int
    /// Original bytes per chunk (rounded down to whole blocks, at least one block).
    public var chunkByteCount: Int
    public var threads: Int
    /// A stream that zstd shrinks by less than this fraction is stored as raw blocks instead: its
    /// Huffman decoding would cost as much as any stream's (about 2 cycles a byte) while saving
    /// almost nothing. 0 keeps every stream zstd shrinks at all.
    ///
    /// The default, 3.2 %, is a price of decode time in bytes: zstd shrinks SmolLM2's Q4_1 quant
    /// payloads by only 3.0–3.7 % per chunk, and storing the least compressible of them raw costs
    /// 0.54 points of size (88.06 → 88.60 % of the GGUF) for about 15 % faster decoding (1.22 →
    /// 1.40 GB/s per core, measured on a loaded 2-core EPYC); Gemma 3 changes by 0.05 points.
    public var rawBelowGain: Double

    /// Quant payloads are near-random: zstd levels above this only slow decoding down (measured on
    /// SmolLM2 and Gemma 3), so payload streams use `min(level, payloadLevelLimit)`.
    public static let payloadLevelLimit = 7
    public static let defaultLevel = 19
    public static let defaultChunkByteCount = 1 << 20

    public static let defaultRawBelowGain = 0.032

    public init(level: Int = ContainerWriter.defaultLevel, chunkByteCount: Int = ContainerWriter.defaultChunkByteCount,
                threads: Int = 2, rawBelowGain: Double = ContainerWriter.defaultRawBelowGain) {
        self.level = level
        self.chunkByteCount = chunkByteCount
        self.threads = threads
        self.rawBelowGain = rawBelowGain
    }

    /// What `pack` produced.
    public struct Summary: Sendable {
        public var ggufByteCount: Int
        public var containerByteCount: Int
        public var tensorCount: Int
        public var chunkCount: Int
        public var ggufSHA256: [UInt8]
    }

    /// Packs the GGUF at `ggufPath` into a new container at `outputPath` (written under a temporary
    /// name and renamed when complete). `progress` gets original bytes done and the total.
    @discardableResult
    public func pack(ggufPath: String, to outputPath: String,
                     progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(StorageError) -> Summary {
        let gguf: GGUFFile
        do {
            gguf = try GGUFFile(path: ggufPath)
        } catch {
            throw StorageError(.invalidModel, "\(ggufPath) is not a GGUF file Ember can read: \(error)")
        }
        return try pack(gguf, to: outputPath, progress: progress)
    }

    /// Packs an open GGUF file.
    @discardableResult
    public func pack(_ gguf: GGUFFile, to outputPath: String,
                     progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(StorageError) -> Summary {
        guard (1...Zstd.maximumLevel).contains(level) else {
            throw StorageError(.compressionFailed, "zstd level \(level) is out of range; use 1 to \(Zstd.maximumLevel)")
        }
        guard chunkByteCount >= 1, chunkByteCount <= ContainerFormat.maximumChunkByteCount else {
            throw StorageError(.compressionFailed, "chunks of \(chunkByteCount) bytes are out of range; use 1 byte to 64 MiB")
        }
        let plan = try Plan(gguf: gguf, chunkByteCount: chunkByteCount)
        let output = try OutputFile(path: outputPath)

        // Room for the header and index first: the index's size depends only on the plan.
        let placeholder = IndexCodec.encode(layouts: plan.layouts, tensors: plan.tensors, chunks: plan.chunks,
                                            remainderByteCount: plan.remainderByteCount, seekTableChecksum: 0)
        let dataStart = ContainerFormat.headerFrameByteCount + placeholder.frame.count

        var sha = SHA256()
        sha.update(UnsafeRawBufferPointer(start: gguf.baseAddress, count: gguf.fileSize))
        let digest = sha.finalize()

        var chunks = plan.chunks
        var compressedSizes = [ContainerFormat.headerFrameByteCount, placeholder.frame.count]
        var decompressedSizes = [0, 0]
        var writeOffset = dataStart
        let threadCount = max(1, threads)
        let pool = ThreadPool(threadCount: threadCount)
        let workers = try (0..<threadCount).map { _ throws(StorageError) in try ChunkCompressor() }
        let batchSize = 8 * threadCount
        var doneBytes = 0
        progress(0, gguf.fileSize)
        var batchStart = 0
        while batchStart < chunks.count {
            let batch = batchStart..<min(batchStart + batchSize, chunks.count)
            let results = Mutex<[Int: CompressedChunk]>([:])
            let failure = Mutex<StorageError?>(nil)
            let next = Atomic<Int>(batch.lowerBound)
            pool.parallelFor(threadCount) { _, thread in
                let worker = workers[thread]
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < batch.upperBound else { return }
                    do throws(StorageError) {
                        let compressed = try worker.compress(chunk: chunks[index], plan: plan, gguf: gguf, level: level, rawBelowGain: rawBelowGain)
                        results.withLock { $0[index] = compressed }
                    } catch {
                        failure.withLock { $0 = error }
                    }
                }
            }
            if let error = failure.withLock({ $0 }) { throw error }
            let finished = results.withLock { $0 }
            for index in batch {
                guard let compressed = finished[index] else { continue }
                try output.write(compressed.frames, at: writeOffset)
                writeOffset += compressed.frames.count
                chunks[index].compressedByteCount = compressed.frames.count
                chunks[index].contentChecksum = compressed.contentChecksum
                chunks[index].frameChecksum = compressed.frameChecksum
                compressedSizes += compressed.frameSizes
                decompressedSizes += compressed.streamSizes
                doneBytes += chunks[index].byteCount
            }
            progress(doneBytes, gguf.fileSize)
            batchStart = batch.upperBound
        }

        let seekTable = SeekTable(compressedSizes: compressedSizes, decompressedSizes: decompressedSizes).encoded()
        try output.write(seekTable, at: writeOffset)
        let index = IndexCodec.encode(layouts: plan.layouts, tensors: plan.tensors, chunks: chunks,
                                      remainderByteCount: plan.remainderByteCount, seekTableChecksum: XXH3.hash(seekTable))
        assert(index.frame.count == placeholder.frame.count)
        try output.write(index.frame, at: ContainerFormat.headerFrameByteCount)
        let header = ContainerHeader(
            formatVersion: ContainerFormat.version, minimumReaderVersion: ContainerFormat.version, flags: 0,
            containerByteCount: writeOffset + seekTable.count, ggufByteCount: gguf.fileSize, ggufSHA256: digest,
            indexOffset: ContainerFormat.headerFrameByteCount, indexFrameByteCount: index.frame.count,
            indexChecksum: index.checksum, tensorCount: plan.tensors.count, chunkCount: chunks.count,
            dataFrameCount: compressedSizes.count - 2)
        try output.write(header.encoded(), at: 0)
        try output.commit()
        return Summary(ggufByteCount: gguf.fileSize, containerByteCount: header.containerByteCount,
                       tensorCount: plan.tensors.count, chunkCount: chunks.count, ggufSHA256: digest)
    }
}

/// How a GGUF file is cut into chunks, before anything is compressed.
struct Plan: Sendable {
    var layouts: [StreamLayout]
    var tensors: [TensorRecord]
    var chunks: [ChunkRecord]
    var remainderByteCount: Int
    /// GGUF ranges outside every tensor, in file order: (offset in the remainder, GGUF offset, bytes).
    var remainderPieces: [(remainderOffset: Int, ggufOffset: Int, byteCount: Int)]
    /// Per tensor: the levels of its layout's streams (side streams harder than payload).
    var streamContents: [TensorType: [StreamLayout.Content]]

    init(gguf: GGUFFile, chunkByteCount: Int) throws(StorageError) {
        let ordered = gguf.tensors.sorted { $0.offset < $1.offset }
        var layoutNumbers: [TensorType: Int] = [:]
        layouts = []
        streamContents = [:]
        for tensor in ordered where layoutNumbers[tensor.type] == nil {
            if let layout = StreamLayout.builtIn(for: tensor.type), let runs = StreamLayout.builtInRuns(for: tensor.type) {
                layouts.append(layout)
                layoutNumbers[tensor.type] = layouts.count
                streamContents[tensor.type] = runs.map(\.1)
            } else {
                layoutNumbers[tensor.type] = 0
            }
        }
        guard ordered.count < Int(UInt32.max) else {
            throw StorageError(.invalidModel, "the GGUF has \(ordered.count) tensors; a container holds fewer than 2^32")
        }

        // The remainder: every byte outside the tensors.
        remainderPieces = []
        var cursor = 0
        var remainder = 0
        for tensor in ordered {
            let start = gguf.dataOffset + tensor.offset
            if start > cursor {
                remainderPieces.append((remainder, cursor, start - cursor))
                remainder += start - cursor
            }
            cursor = max(cursor, start + tensor.byteCount)
        }
        if cursor < gguf.fileSize {
            remainderPieces.append((remainder, cursor, gguf.fileSize - cursor))
            remainder += gguf.fileSize - cursor
        }
        remainderByteCount = remainder

        chunks = []
        func split(byteCount: Int, unit: Int) -> [(offset: Int, byteCount: Int)] {
            guard byteCount > 0 else { return [] }
            let units = byteCount / unit
            let pieces = max(1, (byteCount + chunkByteCount - 1) / chunkByteCount)
            let count = min(pieces, units)
            let base = units / count, extra = units % count
            var result: [(Int, Int)] = []
            var offset = 0
            for piece in 0..<count {
                let size = (base + (piece < extra ? 1 : 0)) * unit
                result.append((offset, size))
                offset += size
            }
            return result
        }
        for piece in split(byteCount: remainder, unit: 1) {
            chunks.append(ChunkRecord(tensor: ContainerFormat.remainderTensor, layout: 0, frameCount: 1,
                                      offset: piece.offset, byteCount: piece.byteCount))
        }
        tensors = []
        for (position, tensor) in ordered.enumerated() {
            let layout = layoutNumbers[tensor.type] ?? 0
            let frames = layout == 0 ? 1 : layouts[layout - 1].runs.count
            let pieces = split(byteCount: tensor.byteCount, unit: tensor.type.bytesPerBlock)
            tensors.append(TensorRecord(name: tensor.name, type: tensor.type, ggufOffset: gguf.dataOffset + tensor.offset,
                                        byteCount: tensor.byteCount, firstChunk: pieces.isEmpty ? 0 : chunks.count,
                                        chunkCount: pieces.count))
            for piece in pieces {
                chunks.append(ChunkRecord(tensor: UInt32(position), layout: layout, frameCount: frames,
                                          offset: piece.offset, byteCount: piece.byteCount))
            }
        }
    }
}

/// One chunk's frames, ready to write.
struct CompressedChunk: Sendable {
    var frames: [UInt8]
    var frameSizes: [Int]
    var streamSizes: [Int]
    var contentChecksum: UInt64
    var frameChecksum: UInt64
}

/// A compressing thread's zstd context and scratch.
///
/// `@unchecked Sendable`: each instance is used by one pool thread at a time (its index).
final class ChunkCompressor: @unchecked Sendable {
    let compressor: ZstdCompressor
    var scratch: UnsafeMutableRawBufferPointer

    init() throws(StorageError) {
        compressor = try ZstdCompressor()
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
    }

    deinit { scratch.deallocate() }

    private func scratch(_ byteCount: Int) -> UnsafeMutableRawPointer {
        if scratch.count < byteCount {
            scratch.deallocate()
            scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        }
        return scratch.baseAddress!
    }

    func compress(chunk: ChunkRecord, plan: Plan, gguf: GGUFFile, level: Int, rawBelowGain: Double) throws(StorageError) -> CompressedChunk {
        // The chunk's original bytes: a pointer into the GGUF, or the remainder pieces gathered into
        // scratch (remainder chunks are plain bytes, so the scratch is free for them).
        let source: UnsafeRawBufferPointer
        if chunk.tensor == ContainerFormat.remainderTensor {
            let gathered = scratch(chunk.byteCount)
            let end = chunk.offset + chunk.byteCount
            for piece in plan.remainderPieces where piece.remainderOffset < end && piece.remainderOffset + piece.byteCount > chunk.offset {
                let from = max(chunk.offset, piece.remainderOffset)
                let to = min(end, piece.remainderOffset + piece.byteCount)
                (gathered + (from - chunk.offset)).copyMemory(from: gguf.baseAddress + piece.ggufOffset + (from - piece.remainderOffset),
                                                             byteCount: to - from)
            }
            source = UnsafeRawBufferPointer(start: gathered, count: chunk.byteCount)
        } else {
            let tensor = plan.tensors[Int(chunk.tensor)]
            source = UnsafeRawBufferPointer(start: gguf.baseAddress + tensor.ggufOffset + chunk.offset, count: chunk.byteCount)
        }
        var result = CompressedChunk(frames: [], frameSizes: [], streamSizes: [], contentChecksum: XXH3.hash(source), frameChecksum: 0)
        result.frames.reserveCapacity(chunk.byteCount + 1024)
        if chunk.layout == 0 {
            result.frameSizes.append(try compressor.compress(source, level: Int32(level), appendingTo: &result.frames))
            result.streamSizes.append(chunk.byteCount)
        } else {
            let tensor = plan.tensors[Int(chunk.tensor)]
            let layout = plan.layouts[chunk.layout - 1]
            let contents = plan.streamContents[tensor.type] ?? []
            let blocks = chunk.byteCount / layout.blockByteCount
            let grouped = scratch(chunk.byteCount)
            layout.group(source.baseAddress!, blockCount: blocks, into: grouped)
            var offset = 0
            for (stream, run) in layout.runs.enumerated() {
                let size = run.length * blocks
                let streamLevel = stream < contents.count && contents[stream] == .payload
                    ? min(level, ContainerWriter.payloadLevelLimit) : level
                let stream = UnsafeRawBufferPointer(start: grouped + offset, count: size)
                let frameStart = result.frames.count
                var frameSize = try compressor.compress(stream, level: Int32(streamLevel), appendingTo: &result.frames)
                if Double(frameSize) > Double(size) * (1 - rawBelowGain) {
                    result.frames.removeSubrange(frameStart...)
                    frameSize = Zstd.appendRawFrame(stream, to: &result.frames)
                }
                result.frameSizes.append(frameSize)
                result.streamSizes.append(size)
                offset += size
            }
        }
        result.frameChecksum = XXH3.hash(result.frames)
        return result
    }
}

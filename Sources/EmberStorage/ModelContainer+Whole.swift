import EmberCore
import EmberKernels

/// What ``ModelContainer/verify(threads:progress:)`` found.
public struct VerificationReport: Sendable {
    public var chunkCount: Int
    public var tensorCount: Int
    public var ggufByteCount: Int
    public var containerByteCount: Int
    /// One error per damaged chunk, each naming the chunk and its tensor, in chunk order.
    public var damagedChunks: [StorageError]
    /// The SHA-256 of the rebuilt GGUF; nil when damaged chunks made it pointless to compute.
    public var computedSHA256: [UInt8]?
    public var expectedSHA256: [UInt8]

    /// Every chunk decoded and matched its checksums, and the rebuilt GGUF has the recorded SHA-256.
    public var isIntact: Bool { damagedChunks.isEmpty && computedSHA256 == expectedSHA256 }
}

/// Decode speed on one core, from ``ModelContainer/measureDecodeSpeed(repetitions:)``.
public struct DecodeSpeed: Sendable {
    /// Original (GGUF) bytes decoded.
    public var byteCount: Int
    /// The fastest repetition's thread CPU time, in seconds.
    public var cpuSeconds: Double
    /// Original bytes per CPU second, in MB/s (10^6 bytes).
    public var megabytesPerSecond: Double { Double(byteCount) / cpuSeconds / 1e6 }
}

extension ModelContainer {
    /// Chunks decoded together: in parallel, then hashed and written in GGUF order.
    static let batchByteCount = 16 << 20

    /// Walks the GGUF in file order: decodes the remainder, then the tensors' chunks in batches on
    /// `threads` threads, and hands every decoded range to `emit(ggufOffset, bytes)` in order. Damaged
    /// chunks go to `damaged` (when it is given, the walk goes on and their bytes are skipped;
    /// otherwise the first one is thrown).
    func walkGGUF(threads: Int, checkStoredBytes: Bool, damaged: ((StorageError) -> Void)?,
                  progress: (_ done: Int, _ total: Int) -> Void,
                  emit: (_ ggufOffset: Int, _ bytes: UnsafeRawBufferPointer) throws(StorageError) -> Void) throws(StorageError) {
        let total = header.ggufByteCount
        var done = 0
        func report(_ failures: [Int: StorageError]) throws(StorageError) {
            for key in failures.keys.sorted() {
                guard let damaged else { throw failures[key]! }
                damaged(failures[key]!)
            }
        }
        // The remainder first: it is small and its pieces lie between the tensors.
        let remainder = UnsafeMutableRawBufferPointer.allocate(byteCount: max(remainderByteCount, 1), alignment: 64)
        defer { remainder.deallocate() }
        let remainderChunks = chunks.indices.filter { chunks[$0].tensor == nil }
        let remainderFailures = decodeChunks(remainderChunks, threads: threads, stopAtFirstFailure: damaged == nil,
                                             checkStoredBytes: checkStoredBytes) { index in
            UnsafeMutableRawBufferPointer(rebasing: remainder[chunks[index].offset..<(chunks[index].offset + chunks[index].byteCount)])
        }
        try report(remainderFailures)
        let remainderIntact = remainderFailures.isEmpty
        var nextPiece = 0
        func emitPieces(before ggufOffset: Int) throws(StorageError) {
            while nextPiece < remainderPieces.count, remainderPieces[nextPiece].ggufOffset < ggufOffset {
                let piece = remainderPieces[nextPiece]
                if remainderIntact {
                    try emit(piece.ggufOffset, UnsafeRawBufferPointer(start: remainder.baseAddress! + piece.remainderOffset, count: piece.byteCount))
                }
                done += piece.byteCount
                nextPiece += 1
            }
        }

        let tensorChunks = chunks.indices.filter { chunks[$0].tensor != nil }
        let pool = threads > 1 ? ThreadPool(threadCount: threads) : nil
        let batchBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ModelContainer.batchByteCount + ContainerFormat.maximumChunkByteCount, alignment: 64)
        defer { batchBuffer.deallocate() }
        var position = 0
        while position < tensorChunks.count {
            // A batch: consecutive chunks up to the batch size (at least one).
            var batch: [Int] = []
            var offsets: [Int: Int] = [:]
            var batchBytes = 0
            while position < tensorChunks.count {
                let index = tensorChunks[position]
                if !batch.isEmpty, batchBytes + chunks[index].byteCount > ModelContainer.batchByteCount { break }
                offsets[index] = batchBytes
                batchBytes += chunks[index].byteCount
                batch.append(index)
                position += 1
            }
            let failures = decodeChunks(batch, threads: threads, stopAtFirstFailure: damaged == nil, checkStoredBytes: checkStoredBytes,
                                        pool: pool) { index in
                UnsafeMutableRawBufferPointer(rebasing: batchBuffer[offsets[index]!..<(offsets[index]! + chunks[index].byteCount)])
            }
            try report(failures)
            for index in batch {
                let chunk = chunks[index]
                let ggufOffset = tensors[chunk.tensor!].ggufOffset + chunk.offset
                try emitPieces(before: ggufOffset)
                if failures[index] == nil {
                    try emit(ggufOffset, UnsafeRawBufferPointer(start: batchBuffer.baseAddress! + offsets[index]!, count: chunk.byteCount))
                }
                done += chunk.byteCount
            }
            progress(done, total)
        }
        try emitPieces(before: Int.max)
        progress(total, total)
    }

    /// Writes the original GGUF to `outputPath`, byte for byte, decoding on `threads` threads. Every
    /// chunk is checked, and the file's SHA-256 must equal the one recorded when it was packed; the
    /// file is written under a temporary name and renamed only then.
    public func reconstructGGUF(to outputPath: String, threads: Int = 2,
                                progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(StorageError) {
        let output = try OutputFile(path: outputPath)
        var hasher = SHA256()
        try walkGGUF(threads: threads, checkStoredBytes: false, damaged: nil, progress: progress) { (offset, bytes) throws(StorageError) in
            hasher.update(bytes)
            try output.write(bytes, at: offset)
        }
        let digest = hasher.finalize()
        guard digest == header.ggufSHA256 else {
            throw StorageError(.checksumMismatch, "\(path): the rebuilt GGUF has SHA-256 \(SHA256.hexString(digest)), the container records \(header.ggufSHA256Hex); nothing was written")
        }
        try output.commit()
    }

    /// Decodes every chunk and checks everything: each chunk's stored bytes and decoded bytes against
    /// their checksums, then the SHA-256 of the whole rebuilt GGUF. Damaged chunks are all listed,
    /// not just the first.
    public func verify(threads: Int = 2, progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) -> VerificationReport {
        var damagedChunks: [StorageError] = []
        var hasher = SHA256()
        do throws(StorageError) {
            try walkGGUF(threads: threads, checkStoredBytes: true, damaged: { damagedChunks.append($0) }, progress: progress) { _, bytes in
                hasher.update(bytes)
            }
        } catch {
            damagedChunks.append(error)
        }
        if damagedChunks.isEmpty {
            do throws(StorageError) {
                _ = try ggufHeader()
            } catch {
                damagedChunks.append(error)
            }
        }
        let digest = damagedChunks.isEmpty ? hasher.finalize() : nil
        return VerificationReport(chunkCount: chunks.count, tensorCount: tensors.count, ggufByteCount: header.ggufByteCount,
                                  containerByteCount: header.containerByteCount, damagedChunks: damagedChunks,
                                  computedSHA256: digest, expectedSHA256: header.ggufSHA256)
    }

    /// Decodes the whole model on this thread `repetitions` times — every chunk with all its checks
    /// (zstd frames, stream sizes, XXH3-64 of the decoded bytes), into one resident buffer — and
    /// returns the fastest run's thread CPU time: the decode speed of one core.
    public func measureDecodeSpeed(repetitions: Int = 3) throws(StorageError) -> DecodeSpeed {
        let image = UnsafeMutableRawBufferPointer.allocate(byteCount: max(header.ggufByteCount, 1), alignment: 64)
        defer { image.deallocate() }
        image.initializeMemory(as: UInt8.self, repeating: 0)
        let view = UnsafeMutableRawBufferPointer(rebasing: image[0..<header.ggufByteCount])
        var best = Double.infinity
        for _ in 0..<max(1, repetitions) {
            let start = threadCPUSeconds()
            try decodeGGUF(into: view, threads: 1)
            best = min(best, threadCPUSeconds() - start)
        }
        return DecodeSpeed(byteCount: header.ggufByteCount, cpuSeconds: max(best, 1e-9))
    }
}

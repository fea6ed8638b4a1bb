import EmberCore
import EmberKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The chunks of a new container that an old one lacks: what an update must download.
///
/// A new chunk is reused when the old container holds a chunk with the same stored bytes (same
/// frame checksum and size, and the bytes compared). Chunks are matched by content, not position,
/// so tensors that moved or changed size elsewhere do not spoil the match. Packing is
/// deterministic (same zstd version, level and chunk size give the same frames), so an unchanged
/// tensor packs to the same chunks.
public struct ContainerDiff: Sendable {
    /// A chunk of the new container that the old one does not have.
    public struct Chunk: Sendable, Equatable {
        /// The chunk's index in the new container.
        public var index: Int
        /// Its tensor, or nil for the GGUF's header and padding.
        public var tensor: String?
        public var byteCount: Int
        public var compressedByteCount: Int
    }

    /// Chunks to download, in order.
    public var changed: [Chunk]
    /// For each reused chunk of the new container, the old chunk with the same bytes.
    public var reused: [Int: Int]
    public var newChunkCount: Int
    public var newContainerByteCount: Int
    /// Bytes a patch carries: the new header, index and seek table, and the changed chunks.
    public var patchByteCount: Int

    /// Compares `old` with `new`.
    public init(old: ModelContainer, new: ModelContainer) {
        struct Key: Hashable {
            var frameChecksum: UInt64
            var compressedByteCount: Int
            var contentChecksum: UInt64
            var byteCount: Int
        }
        func key(_ chunk: ContainerChunk) -> Key {
            Key(frameChecksum: chunk.frameChecksum, compressedByteCount: chunk.compressedByteCount,
                contentChecksum: chunk.contentChecksum, byteCount: chunk.byteCount)
        }
        var oldChunks: [Key: Int] = [:]
        for (index, chunk) in old.chunks.enumerated() where oldChunks[key(chunk)] == nil {
            oldChunks[key(chunk)] = index
        }
        changed = []
        reused = [:]
        for (index, chunk) in new.chunks.enumerated() {
            if let match = oldChunks[key(chunk)], Self.sameBytes(old.storedBytes(ofChunk: match), new.storedBytes(ofChunk: index)) {
                reused[index] = match
            } else {
                changed.append(Chunk(index: index, tensor: new.tensorName(ofChunk: index), byteCount: chunk.byteCount,
                                     compressedByteCount: chunk.compressedByteCount))
            }
        }
        newChunkCount = new.chunks.count
        newContainerByteCount = new.header.containerByteCount
        let frameBytes = changed.reduce(0) { $0 + $1.compressedByteCount }
        patchByteCount = ContainerPatch.fixedByteCount + new.header.indexOffset + new.header.indexFrameByteCount
            + new.seekTableBytes.count + changed.count * 12 + frameBytes
    }

    static func sameBytes(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer) -> Bool {
        left.count == right.count && (left.count == 0 || memcmp(left.baseAddress!, right.baseAddress!, left.count) == 0)
    }

    /// Names of the tensors with at least one changed chunk, in order.
    public var changedTensors: [String] {
        var seen: Set<String> = []
        return changed.compactMap(\.tensor).filter { seen.insert($0).inserted }
    }
}

extension ModelContainer {
    /// The seek table frame, as stored.
    var seekTableBytes: UnsafeRawBufferPointer {
        let end = chunks.last.map { $0.compressedOffset + $0.compressedByteCount } ?? (header.indexOffset + header.indexFrameByteCount)
        return file.slice(end..<file.byteCount)
    }
}

/// An update from one container to another: the new container's header, index and seek table,
/// and the stored bytes of the chunks the old container lacks (docs/FORMAT.md, "Updates").
///
/// ```
/// EMBRGGZP  u16 version (1)  u16 0  u32 0
/// [32] SHA-256 of the old GGUF   u64 XXH3 of the old index   (the base the patch applies to)
/// u64 n  [n] new header and index frames      u64 m  [m] new seek table frame
/// u32 k  k × (u32 chunk index, u64 size, [size] stored bytes)
/// u64 XXH3-64 of everything before
/// ```
public enum ContainerPatch {
    static let magic: [UInt8] = Array("EMBRGGZP".utf8)
    /// Bytes of the patch outside its three variable parts.
    static let fixedByteCount = 8 + 8 + 32 + 8 + 8 + 8 + 4 + 8

    /// Writes a patch that turns `old` into `new`.
    public static func write(from old: ModelContainer, to new: ModelContainer, diff: ContainerDiff, path: String) throws(StorageError) {
        var writer = ByteWriter()
        writer.append(magic)
        writer.append(UInt16(1))
        writer.append(UInt16(0))
        writer.append(UInt32(0))
        writer.append(old.header.ggufSHA256)
        writer.append(old.header.indexChecksum)
        let prefix = new.file.slice(0..<(new.header.indexOffset + new.header.indexFrameByteCount))
        writer.append(UInt64(prefix.count))
        writer.append(Array(prefix))
        writer.append(UInt64(new.seekTableBytes.count))
        writer.append(Array(new.seekTableBytes))
        writer.append(UInt32(diff.changed.count))
        for chunk in diff.changed {
            let bytes = new.storedBytes(ofChunk: chunk.index)
            writer.append(UInt32(chunk.index))
            writer.append(UInt64(bytes.count))
            writer.append(Array(bytes))
        }
        writer.append(XXH3.hash(writer.bytes))
        let output = try OutputFile(path: path)
        try output.write(writer.bytes, at: 0)
        try output.commit()
    }

    /// Rebuilds the new container at `outputPath` from `old` and the patch at `patchPath`. Every
    /// chunk's stored bytes are checked against the new index before they are written, and the
    /// result is opened (its structure checked) before it is renamed into place; pass `verify` to
    /// also decode everything and check the GGUF's SHA-256.
    public static func apply(old: ModelContainer, patchPath: String, outputPath: String, verify: Bool = true,
                             progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(StorageError) {
        let patch = try MappedFile(path: patchPath)
        let bytes = patch.bytes
        guard bytes.count >= fixedByteCount, Array(bytes[0..<8]) == magic else {
            throw StorageError(.notAContainer, "\(patchPath) is not an Ember container patch")
        }
        let stored = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self))
        guard XXH3.hash(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 8)])) == stored else {
            throw StorageError(.checksumMismatch, "\(patchPath) is damaged: its checksum does not match; fetch it again")
        }
        var reader = ByteReader(UnsafeRawBufferPointer(rebasing: bytes[0..<(bytes.count - 8)]), fileOffset: 0, what: "the patch \(patchPath)")
        _ = try reader.bytes(8, "magic")
        guard try reader.read(UInt16.self, "version") == 1 else {
            throw StorageError(.unsupportedVersion, "\(patchPath) is a patch of a newer version than this Ember reads")
        }
        _ = try reader.read(UInt16.self, "reserved")
        _ = try reader.read(UInt32.self, "flags")
        let baseSHA = Array(try reader.bytes(32, "base SHA-256"))
        let baseIndex = try reader.read(UInt64.self, "base index checksum")
        guard baseSHA == old.header.ggufSHA256, baseIndex == old.header.indexChecksum else {
            throw StorageError(.patchMismatch, "\(patchPath) updates a different container (GGUF \(SHA256.hexString(baseSHA).prefix(12))…), not \(old.path) (GGUF \(old.header.ggufSHA256Hex.prefix(12))…)")
        }
        let prefixCount = try reader.count(UInt64.self, "header and index size", limit: reader.remaining)
        let prefix = try reader.bytes(prefixCount, "header and index")
        let seekCount = try reader.count(UInt64.self, "seek table size", limit: reader.remaining)
        let seekTable = try reader.bytes(seekCount, "seek table")
        let changedCount = try reader.count(UInt32.self, "changed chunk count", limit: reader.remaining / 12)
        var provided: [Int: UnsafeRawBufferPointer] = [:]
        for _ in 0..<changedCount {
            let index = try reader.count(UInt32.self, "chunk index")
            let size = try reader.count(UInt64.self, "chunk size", limit: reader.remaining)
            provided[index] = try reader.bytes(size, "chunk \(index)")
        }

        // The new header and index, checked as a reader checks them.
        let header = try ContainerHeader.decode(prefix, path: patchPath)
        guard header.indexOffset == ContainerFormat.headerFrameByteCount,
              header.indexOffset + header.indexFrameByteCount == prefix.count
        else {
            throw StorageError(.malformed, "\(patchPath) holds a header and index of inconsistent sizes")
        }
        let indexContent = UnsafeRawBufferPointer(rebasing: prefix[(header.indexOffset + 8)...])
        guard XXH3.hash(indexContent) == header.indexChecksum else {
            throw StorageError(.checksumMismatch, "the new index inside \(patchPath) is damaged")
        }
        let index = try IndexCodec.decode(indexContent, header: header)

        var oldByKey: [UInt64: Int] = [:]
        for (position, chunk) in old.chunks.enumerated() where oldByKey[chunk.frameChecksum] == nil {
            oldByKey[chunk.frameChecksum] = position
        }
        let output = try OutputFile(path: outputPath)
        try output.write(prefix, at: 0)
        var offset = prefix.count
        let total = index.chunks.reduce(0) { $0 + $1.compressedByteCount }
        var done = 0
        for (position, chunk) in index.chunks.enumerated() {
            let tensor = chunk.tensor.map { index.tensors[$0].name }
            let source: UnsafeRawBufferPointer
            if let bytes = provided[position] {
                source = bytes
            } else if let match = oldByKey[chunk.frameChecksum], old.chunks[match].compressedByteCount == chunk.compressedByteCount {
                source = old.storedBytes(ofChunk: match)
            } else {
                throw StorageError(.patchMismatch, "neither \(patchPath) nor \(old.path) holds \(StorageError.place(chunk: position, tensor: tensor)) of the new container",
                                   chunk: position, tensor: tensor)
            }
            guard source.count == chunk.compressedByteCount, XXH3.hash(source) == chunk.frameChecksum else {
                let from = provided[position] == nil ? old.path : patchPath
                throw StorageError(.checksumMismatch, "\(StorageError.place(chunk: position, tensor: tensor)) taken from \(from) does not match the new index; that file is damaged",
                                   chunk: position, tensor: tensor)
            }
            try output.write(source, at: offset)
            offset += source.count
            done += source.count
            progress(done, total)
        }
        try output.write(seekTable, at: offset)
        guard offset + seekTable.count == header.containerByteCount else {
            throw StorageError(.malformed, "the rebuilt container has \(offset + seekTable.count) bytes, its header says \(header.containerByteCount)")
        }
        let rebuilt = try ModelContainer(file: MappedFile(path: output.temporaryPath), path: outputPath)
        if verify {
            let report = rebuilt.verify()
            if let first = report.damagedChunks.first { throw first }
            guard report.isIntact else {
                throw StorageError(.checksumMismatch, "the rebuilt container decodes to a GGUF with the wrong SHA-256")
            }
        }
        try output.commit()
    }
}

import CZstd

/// A zstd compression context (`ZSTD_CCtx`), reused across frames; one per thread.
///
/// `@unchecked Sendable`: the context is used by one thread at a time (its owner), and freed in `deinit`.
final class ZstdCompressor: @unchecked Sendable {
    private let context: OpaquePointer
    private var output: UnsafeMutableRawBufferPointer

    init() throws(StorageError) {
        guard let context = ZSTD_createCCtx() else {
            throw StorageError(.compressionFailed, "zstd could not allocate a compression context (out of memory)")
        }
        self.context = context
        output = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
    }

    deinit {
        ZSTD_freeCCtx(context)
        output.deallocate()
    }

    /// Compresses `input` into one zstd frame (`ZSTD_compressCCtx`: content size recorded, no zstd
    /// checksum) and appends the frame to `frames`. Returns the frame's size.
    func compress(_ input: UnsafeRawBufferPointer, level: Int32, appendingTo frames: inout [UInt8]) throws(StorageError) -> Int {
        let bound = ZSTD_compressBound(input.count)
        if output.count < bound {
            output.deallocate()
            output = UnsafeMutableRawBufferPointer.allocate(byteCount: bound, alignment: 64)
        }
        let written = ZSTD_compressCCtx(context, output.baseAddress, output.count, input.baseAddress, input.count, level)
        if ZSTD_isError(written) != 0 {
            throw StorageError(.compressionFailed, "zstd could not compress \(input.count) bytes: \(Zstd.errorName(written))")
        }
        frames.append(contentsOf: UnsafeRawBufferPointer(start: output.baseAddress, count: written))
        return written
    }
}

/// A zstd decompression context (`ZSTD_DCtx`) and the scratch buffer chunks are decoded into before
/// their streams are interleaved back into blocks; one per decoding thread.
///
/// `@unchecked Sendable`: used by one thread at a time, freed in `deinit`.
public final class ChunkDecoder: @unchecked Sendable {
    let context: OpaquePointer
    private(set) var scratch: UnsafeMutableRawBufferPointer

    /// A decoder with its own zstd context (`ZSTD_createDCtx`).
    public init() throws(StorageError) {
        guard let context = ZSTD_createDCtx() else {
            throw StorageError(.decodeFailed, "zstd could not allocate a decompression context (out of memory)")
        }
        self.context = context
        scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
    }

    deinit {
        ZSTD_freeDCtx(context)
        scratch.deallocate()
    }

    /// Scratch of at least `byteCount` bytes.
    func scratch(byteCount: Int) -> UnsafeMutableRawPointer {
        if scratch.count < byteCount {
            scratch.deallocate()
            scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: byteCount, alignment: 64)
        }
        return scratch.baseAddress!
    }

    /// Decodes one frame (`ZSTD_decompressDCtx`) into exactly `destination.count` bytes; returns
    /// zstd's error text when the frame is damaged or decodes to another size.
    func decodeFrame(_ frame: UnsafeRawBufferPointer, into destination: UnsafeMutableRawBufferPointer) -> String? {
        let written = ZSTD_decompressDCtx(context, destination.baseAddress, destination.count, frame.baseAddress, frame.count)
        if ZSTD_isError(written) != 0 { return Zstd.errorName(written) }
        if written != destination.count {
            return "the frame holds \(written) bytes, the index says \(destination.count)"
        }
        return nil
    }
}

enum Zstd {
    /// Appends `input` as one zstd frame of raw blocks (RFC 8878: single-segment frame header with
    /// the content size, then blocks of at most 128 KiB stored as they are). zstd decodes such a
    /// frame by copying. Returns the frame's size.
    static func appendRawFrame(_ input: UnsafeRawBufferPointer, to frames: inout [UInt8]) -> Int {
        let start = frames.count
        let size = input.count
        func append<T: FixedWidthInteger>(_ value: T, bytes: Int) {
            for index in 0..<bytes { frames.append(UInt8(truncatingIfNeeded: value >> (8 * index))) }
        }
        append(UInt32(0xFD2F_B528), bytes: 4)
        if size < 256 {
            frames.append(0x20)  // single segment, 1-byte content size
            append(size, bytes: 1)
        } else if size < 65_536 + 256 {
            frames.append(0x60)  // single segment, 2-byte content size (minus 256)
            append(size - 256, bytes: 2)
        } else {
            frames.append(0xA0)  // single segment, 4-byte content size
            append(size, bytes: 4)
        }
        let maximumBlock = 128 << 10
        var offset = 0
        repeat {
            let length = min(maximumBlock, size - offset)
            let last = offset + length == size ? 1 : 0
            append(UInt32(last | (length << 3)), bytes: 3)  // block type 0: raw
            if length > 0 { frames.append(contentsOf: UnsafeRawBufferPointer(rebasing: input[offset..<(offset + length)])) }
            offset += length
        } while offset < size
        return frames.count - start
    }

    /// `ZSTD_getErrorName` as a Swift string.
    static func errorName(_ code: Int) -> String {
        String(cString: ZSTD_getErrorName(code))
    }

    /// The libzstd version, e.g. `1.5.4` (`ZSTD_versionString`).
    static var version: String { String(cString: ZSTD_versionString()) }

    /// Highest level this libzstd offers (`ZSTD_maxCLevel`).
    static var maximumLevel: Int { Int(ZSTD_maxCLevel()) }
}

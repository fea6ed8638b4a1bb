import EmberCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A GGUF header parsed on its own (``GGUFFile/parseHeader(_:fileSize:)``).
public struct GGUFFileHeader: Sendable {
    public let version: UInt32
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Where tensor data starts; tensor offsets count from here.
    public let dataOffset: Int
}

/// A GGUF model file (versions 2 and 3): its metadata, tensor table and memory-mapped data.
///
/// Every field is validated while parsing; a broken or hostile file is rejected with a
/// `GGUFError` naming the field and byte offset, never a crash or a giant allocation.
///
/// `@unchecked Sendable`: immutable after `init`; the mapping (or buffer) is read-only and lives
/// until `deinit`, so pointers handed out stay valid while the file object is alive.
public final class GGUFFile: @unchecked Sendable {
    public let version: UInt32
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    public let dataOffset: Int
    public let fileSize: Int
    private let tensorIndex: [String: Int]
    private let storage: Storage

    /// Where the bytes live: a read-only mapping of the file, or a heap copy.
    private enum Storage {
        case mapped(UnsafeMutableRawPointer, Int)
        case heap(UnsafeMutableRawPointer)

        var pointer: UnsafeRawPointer {
            switch self {
            case .mapped(let base, _): return UnsafeRawPointer(base)
            case .heap(let base): return UnsafeRawPointer(base)
            }
        }
    }

    /// Opens and memory-maps the file at `path` (`open`, `fstat`, `mmap(PROT_READ, MAP_PRIVATE)`),
    /// then validates it.
    public convenience init(path: String) throws(GGUFError) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw GGUFError(.io, field: "file '\(path)'", offset: 0, "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        try self.init(fileDescriptor: descriptor, name: path)
    }

    /// Memory-maps the open file `descriptor` (`fstat`, `mmap(PROT_READ, MAP_PRIVATE)`), then
    /// validates it; `name` names it in messages. The descriptor stays the caller's: the mapping
    /// outlives it, so the caller may close it at once (an Android `ParcelFileDescriptor`, an asset).
    public convenience init(fileDescriptor descriptor: Int32, name: String) throws(GGUFError) {
        let path = name
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw GGUFError(.io, field: "file '\(path)'", offset: 0, "cannot stat: \(String(cString: strerror(errno)))")
        }
        let size = Int(status.st_size)
        guard size > 0 else {
            throw GGUFError(.truncated, field: "file '\(path)'", offset: 0, "the file is empty")
        }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapping != MAP_FAILED else {
            throw GGUFError(.io, field: "file '\(path)'", offset: 0, "cannot map \(size) bytes: \(String(cString: strerror(errno)))")
        }
        do {
            try self.init(storage: .mapped(mapping, size), size: size)
        } catch {
            munmap(mapping, size)
            throw error
        }
    }

    /// Parses a GGUF image held in memory (tests, fuzzing, files built by `GGUFWriter`).
    public convenience init(bytes: [UInt8]) throws(GGUFError) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { source in
            if let base = source.baseAddress { buffer.copyMemory(from: base, byteCount: source.count) }
        }
        do {
            try self.init(storage: .heap(buffer), size: bytes.count)
        } catch {
            buffer.deallocate()
            throw error
        }
    }

    /// Parses a GGUF image in a buffer the file takes over: `buffer` must come from
    /// `UnsafeMutableRawBufferPointer.allocate` and hold at least `byteCount` bytes; it is deallocated
    /// with the file, or at once when parsing fails. Used to load a model decoded from a container
    /// without copying it.
    public convenience init(adopting buffer: UnsafeMutableRawBufferPointer, byteCount: Int) throws(GGUFError) {
        precondition(byteCount <= buffer.count, "the buffer holds \(buffer.count) bytes, not \(byteCount)")
        do {
            try self.init(storage: .heap(buffer.baseAddress!), size: byteCount)
        } catch {
            buffer.deallocate()
            throw error
        }
    }

    private init(storage: Storage, size: Int) throws(GGUFError) {
        var parser = GGUFParser(base: storage.pointer, size: size)
        let header = try parser.parse()
        self.storage = storage
        self.fileSize = size
        self.version = header.version
        self.metadataKeys = header.keys
        self.metadata = header.metadata
        self.tensors = header.tensors
        self.alignment = header.alignment
        self.dataOffset = header.dataOffset
        var index: [String: Int] = [:]
        index.reserveCapacity(header.tensors.count)
        for (position, tensor) in header.tensors.enumerated() { index[tensor.name] = position }
        self.tensorIndex = index
    }

    deinit {
        switch storage {
        case .mapped(let base, let size): munmap(base, size)
        case .heap(let base): base.deallocate()
        }
    }

    /// Parses only a GGUF header — metadata and tensor table — from `header`, the file's first bytes
    /// (at least up to its data section), checking tensor ranges against `fileSize`, the whole
    /// file's size. For files whose tensor data is elsewhere (a compressed container).
    public static func parseHeader(_ header: UnsafeRawBufferPointer, fileSize: Int) throws(GGUFError) -> GGUFFileHeader {
        guard let base = header.baseAddress else {
            throw GGUFError(.truncated, field: "header", offset: 0, "the header is empty")
        }
        var parser = GGUFParser(base: base, size: header.count, fileSize: fileSize)
        let parsed = try parser.parse()
        return GGUFFileHeader(version: parsed.version, metadataKeys: parsed.keys, metadata: parsed.metadata,
                              tensors: parsed.tensors, alignment: parsed.alignment, dataOffset: parsed.dataOffset)
    }

    /// The tensor called `name`, if the file has one.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// Start of the file's bytes; valid while this object lives.
    public var baseAddress: UnsafeRawPointer { storage.pointer }

    /// Start of a tensor's data.
    public func tensorData(_ tensor: GGUFTensorInfo) -> UnsafeRawPointer {
        storage.pointer + dataOffset + tensor.offset
    }

    /// Calls `body` with a tensor's bytes.
    public func withTensorBytes<R, E: Error>(_ tensor: GGUFTensorInfo, _ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: tensorData(tensor), count: tensor.byteCount))
    }

    /// Bytes around a read that a page fault may map at once: the kernel maps a whole page-cache
    /// folio, and file systems with large folios (ext4 and XFS on Linux 6.x) cache a warm file in
    /// folios of up to 2 MiB.
    public static let faultMappingBytes = 2 << 20

    /// Drops from this process every page of the mapping within the `faultMappingBytes`-aligned
    /// windows that cover `pointer ..< pointer + byteCount` (`madvise(MADV_DONTNEED)`): what reading
    /// those bytes may have mapped, neighbours included. For bytes that must not stay resident: a
    /// matrix once copied into its rearranged form, streamed weights, a looked-up embedding row, a
    /// norm copied out while loading. Pages read again later fault back in from the file.
    public func releaseResidentPages(around pointer: UnsafeRawPointer, byteCount: Int) {
        guard case .mapped(let base, let size) = storage else { return }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let window = max(pageSize, Self.faultMappingBytes)
        // Folios are aligned in the file, so the windows are too (the mapping starts at offset 0).
        let start = pointer - UnsafeRawPointer(base)
        guard start >= 0, byteCount >= 0, start + byteCount <= size else { return }
        let first = start / window * window
        let end = min(size, (start + byteCount + window - 1) / window * window)
        guard end > first else { return }
        madvise(base + first, end - first, MADV_DONTNEED)
    }

    /// Asks the kernel to read bytes of the mapping ahead (`madvise(MADV_WILLNEED)`): the pages
    /// come into the page cache without counting in this process's resident set until touched.
    public func prefetch(_ pointer: UnsafeRawPointer, byteCount: Int) {
        guard case .mapped(let base, let size) = storage else { return }
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (pointer - UnsafeRawPointer(base)) / pageSize * pageSize
        guard start >= 0, start < size else { return }
        madvise(base + start, min(size - start, byteCount + pageSize), MADV_WILLNEED)
    }

    /// Drops every resident page of the mapping from this process (see `releaseResidentPages`).
    public func releaseAllResidentPages() {
        guard case .mapped(let base, let size) = storage else { return }
        madvise(base, size, MADV_DONTNEED)
    }

    // MARK: Typed metadata

    public func string(_ key: String) -> String? {
        if case .string(let value) = metadata[key] { return value }
        return nil
    }

    public func integer(_ key: String) -> Int? { metadata[key]?.integerValue }

    public func float(_ key: String) -> Float? { metadata[key]?.floatValue }

    public func bool(_ key: String) -> Bool? {
        switch metadata[key] {
        case .bool(let value): return value
        case .some(let other): return other.integerValue.map { $0 != 0 }
        case nil: return nil
        }
    }

    public func strings(_ key: String) -> [String]? {
        if case .array(.string(let values)) = metadata[key] { return values }
        return nil
    }

    public func floats(_ key: String) -> [Float]? {
        switch metadata[key] {
        case .array(.float32(let values)): return values
        case .array(.float64(let values)): return values.map(Float.init)
        case .array(let other): return other.integers?.map(Float.init)
        default: return nil
        }
    }

    public func integers(_ key: String) -> [Int]? {
        if case .array(let array) = metadata[key] { return array.integers }
        return nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import EmberCore

/// `strerror(errno)` as a Swift string.
func systemErrorMessage() -> String { String(cString: strerror(errno)) }

/// A file's bytes, read-only: a memory mapping (`open`, `fstat`, `mmap(PROT_READ, MAP_PRIVATE)`) or a
/// heap copy (tests and fuzzing).
///
/// `@unchecked Sendable`: the bytes never change after `init` and stay valid until `deinit`.
final class MappedFile: @unchecked Sendable {
    let base: UnsafeRawPointer
    let byteCount: Int
    private let isMapped: Bool

    init(path: String) throws(StorageError) {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else {
            throw StorageError(.io, "cannot open \(path): \(systemErrorMessage())")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw StorageError(.io, "cannot stat \(path): \(systemErrorMessage())")
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw StorageError(.io, "\(path) is not a regular file")
        }
        let size = Int(status.st_size)
        guard size > 0 else {
            throw StorageError(.truncated, "\(path) is empty; it is not a container or was cut short")
        }
        guard let mapping = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), mapping != MAP_FAILED else {
            throw StorageError(.io, "cannot map \(size) bytes of \(path): \(systemErrorMessage())")
        }
        base = UnsafeRawPointer(mapping)
        byteCount = size
        isMapped = true
    }

    init(bytes: [UInt8]) {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { source in
            if let start = source.baseAddress { buffer.copyMemory(from: start, byteCount: source.count) }
        }
        base = UnsafeRawPointer(buffer)
        byteCount = bytes.count
        isMapped = false
    }

    deinit {
        if isMapped {
            munmap(UnsafeMutableRawPointer(mutating: base), byteCount)
        } else {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }

    /// The bytes `range` (already checked to lie inside the file).
    func slice(_ range: Range<Int>) -> UnsafeRawBufferPointer {
        precondition(range.lowerBound >= 0 && range.upperBound <= byteCount, "slice \(range) outside \(byteCount) bytes")
        return UnsafeRawBufferPointer(start: base + range.lowerBound, count: range.count)
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: byteCount) }
}

/// A file being written under a temporary name beside its destination, renamed into place by
/// ``commit()`` after `fsync`, so a half-written file never carries the final name: EmberCore's
/// ``AtomicOutputFile`` (the one implementation every writer shares) with storage errors.
final class OutputFile {
    private let file: AtomicOutputFile
    var path: String { file.path }
    var temporaryPath: String { file.temporaryPath }
    var descriptor: Int32 { file.descriptor }

    init(path: String) throws(StorageError) {
        do { file = try AtomicOutputFile(path: path) } catch { throw StorageError(.io, error.message) }
    }

    /// Writes every byte of `bytes` at `offset` (`pwrite`, retrying short writes).
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(StorageError) {
        do { try file.write(bytes, at: offset) } catch { throw StorageError(.io, error.message) }
    }

    func write(_ bytes: [UInt8], at offset: Int) throws(StorageError) {
        do { try file.write(bytes, at: offset) } catch { throw StorageError(.io, error.message) }
    }

    /// Flushes the file to disk (`fsync`) and renames it to its final name.
    func commit() throws(StorageError) {
        do { try file.commit() } catch { throw StorageError(.io, error.message) }
    }
}

/// CPU time this thread has used, in seconds (`CLOCK_THREAD_CPUTIME_ID`): per-core speed that other
/// processes on a shared machine do not distort.
func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
}

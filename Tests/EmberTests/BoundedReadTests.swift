import EmberCore
import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `BoundedRead` reads at most one byte past its limit, whatever the source: a file, a device that
/// never ends, a pipe that keeps being written.
struct BoundedReadTests {
    @Test("a file of exactly the limit is read whole; one byte more is refused from its size")
    func limitIsInclusive() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let exact = try directory.write("exact", patternBytes(count: 1000, seed: 1))
        #expect(try BoundedRead.file(atPath: exact, limit: 1000) == patternBytes(count: 1000, seed: 1))
        let over = try directory.write("over", patternBytes(count: 1001, seed: 1))
        let error = try #require(throws: FileReadError.self) { try BoundedRead.file(atPath: over, limit: 1000) }
        #expect(error.code == .tooLarge && error.byteCount == 1001)
        #expect(error.message == "\(over) is 1001 B, more than the 1000 B accepted here")
        #expect(try BoundedRead.file(atPath: try directory.write("empty", []), limit: 0) == [])
    }

    @Test("/dev/zero is refused after limit + 1 bytes")
    func endlessDevice() throws {
        let error = try #require(throws: FileReadError.self) { try BoundedRead.file(atPath: "/dev/zero", limit: 3 << 20) }
        #expect(error.code == .tooLarge && error.byteCount == nil)
        #expect(error.message == "/dev/zero holds more than the 3.0 MiB accepted here")
    }

    @Test("a pipe whose writer never stops is read to the limit and refused")
    func endlessPipe() throws {
        var descriptors: [Int32] = [0, 0]
        #expect(pipe(&descriptors) == 0)
        let (reading, writing) = (descriptors[0], descriptors[1])
        let writer = Thread {
            let block = [UInt8](repeating: 0x79, count: 4096)
            // Stops when the reader closes its end (EPIPE; SIGPIPE is ignored below).
            while block.withUnsafeBytes({ write(writing, $0.baseAddress, $0.count) }) > 0 {}
            close(writing)
        }
        signal(SIGPIPE, SIG_IGN)
        writer.start()
        let error = try #require(throws: FileReadError.self) {
            try BoundedRead.read(descriptor: reading, limit: 100_000, source: "the pipe")
        }
        close(reading)
        #expect(error.code == .tooLarge)
        #expect(error.message == "the pipe holds more than the 97.7 KiB accepted here")
    }

    @Test("a directory, a missing file and (when refused) a FIFO are errors; the FIFO is not opened")
    func notFiles() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let isDirectory = try #require(throws: FileReadError.self) { try BoundedRead.file(atPath: directory.path, limit: 10) }
        #expect(isDirectory.code == .isDirectory)
        #expect(isDirectory.message == "\(directory.path) is a directory, not a file")
        let missing = try #require(throws: FileReadError.self) { try BoundedRead.file(atPath: directory.file("none"), limit: 10) }
        #expect(missing.code == .cannotOpen)
        #expect(missing.message == "cannot open \(directory.file("none")): No such file or directory")
        let fifo = directory.file("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        // Opening a FIFO without a writer would wait forever; refused, it returns at once.
        let refused = try #require(throws: FileReadError.self) { try BoundedRead.file(atPath: fifo, limit: 10, streams: .refused) }
        #expect(refused.code == .notRegularFile)
    }
}

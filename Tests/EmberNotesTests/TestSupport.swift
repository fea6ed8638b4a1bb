import Foundation
@testable import EmberNotes

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("ember-notes-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A clock that starts at a fixed time and moves one second each time it is read.
final class SteppingClock: @unchecked Sendable {
    // Read only under `lock`.
    private let lock = NSLock()
    private var milliseconds: Int64

    init(start: Int64 = 1_741_944_413_000) { milliseconds = start }

    func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        milliseconds += 1000
        return Timestamp.date(milliseconds: milliseconds)
    }
}

extension NotesStore.Configuration {
    /// The default configuration with a stepping clock, so tests see distinct, predictable times.
    static func testing(_ clock: SteppingClock = SteppingClock()) -> Self {
        var configuration = Self()
        configuration.now = { clock.now() }
        return configuration
    }
}

/// A small tmpfs mounted on a fresh directory, for a disk that fills up or turns read-only.
///
/// Mounting needs root on Linux (CI runs as root); ``canMount`` is false elsewhere, and the
/// tests that need a real file system say so by being skipped.
final class TinyFileSystem {
    let path: String

    static let canMount: Bool = {
        #if os(Linux)
        guard getuid() == 0, let directory = try? TemporaryDirectory() else { return false }
        defer { directory.remove() }
        guard run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", directory.path]) else { return false }
        return run(["umount", directory.path])
        #else
        return false
        #endif
    }()

    init(size: String, at path: String) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard Self.run(["mount", "-t", "tmpfs", "-o", "size=\(size)", "tmpfs", path]) else {
            throw NotesError(.fileSystem, "cannot mount a tmpfs on \(path)")
        }
    }

    /// `mount -o remount,…`: read-only or writable, and optionally a new size.
    func remount(readOnly: Bool, size: String? = nil) throws {
        let options = (readOnly ? "remount,ro" : "remount,rw") + (size.map { ",size=\($0)" } ?? "")
        guard Self.run(["mount", "-o", options, path]) else { throw NotesError(.fileSystem, "cannot remount \(path)") }
    }

    func unmount() {
        _ = Self.run(["umount", path])
    }

    @discardableResult
    static func run(_ arguments: [String]) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }
}

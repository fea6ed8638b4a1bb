import EmberCore
import EmberStorage
import Foundation
import Testing

/// The one writer every output goes through: temporary file beside the target, fsync, rename; never
/// over a device, directory or fifo; no temporary file left behind.
@Suite("AtomicOutputFile and OutputPolicy")
struct AtomicOutputFileTests {
    static func scratch() throws -> String {
        let directory = NSTemporaryDirectory() + "ember-atomic-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    static func leftovers(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.contains(".partial") }
    }

    @Test("Text is written whole under the final name; an uncommitted writer leaves nothing")
    func writesAndCleansUp() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let target = directory + "/out.txt"
        try AtomicOutputFile.write("hello", to: target)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "hello")
        do {
            let file = try AtomicOutputFile(path: target)
            try file.write(Array("half".utf8), at: 0)
            #expect(FileManager.default.fileExists(atPath: file.temporaryPath))
            #expect((file.temporaryPath as NSString).deletingLastPathComponent == directory)
        }
        #expect(Self.leftovers(directory).isEmpty)
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "hello")
        // Two writers at once get different temporary names.
        let first = try AtomicOutputFile(path: target), second = try AtomicOutputFile(path: target)
        #expect(first.temporaryPath != second.temporaryPath)
    }

    @Test("A device, a directory, a fifo and a symlink to a device are never replaced, even by the library")
    func refusesSpecialFiles() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let link = directory + "/null", fifo = directory + "/fifo", folder = directory + "/folder"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/null")
        #expect(mkfifo(fifo, 0o644) == 0)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        for target in ["/dev/null", link, fifo, folder] {
            #expect(throws: OutputFileError.self) { try AtomicOutputFile.write("x", to: target) }
            #expect(throws: OutputFileError.self) { try OutputPolicy.check(target, inputs: [], overwrite: true) }
        }
        let attributes = try FileManager.default.attributesOfItem(atPath: "/dev/null")
        #expect(attributes[.type] as? FileAttributeType == .typeCharacterSpecial)
        #expect(Self.leftovers(directory).isEmpty)
        #expect(Self.leftovers("/dev").isEmpty)
    }

    @Test("OutputPolicy: an input (also by hard link or symlink) is refused; an existing file only with overwrite")
    func policy() throws {
        let directory = try Self.scratch()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let input = directory + "/in", hard = directory + "/hard", soft = directory + "/soft", other = directory + "/other"
        try "in".write(toFile: input, atomically: false, encoding: .utf8)
        try FileManager.default.linkItem(atPath: input, toPath: hard)
        try FileManager.default.createSymbolicLink(atPath: soft, withDestinationPath: input)
        try "other".write(toFile: other, atomically: false, encoding: .utf8)
        for target in [input, hard, soft] {
            do {
                try OutputPolicy.check(target, inputs: [input], overwrite: true)
                Issue.record("\(target) was allowed")
            } catch {
                #expect(error.kind == .sameAsInput)
            }
        }
        do {
            try OutputPolicy.check(other, inputs: [input], overwrite: false)
            Issue.record("an existing file was allowed without overwrite")
        } catch {
            #expect(error.kind == .exists)
        }
        try OutputPolicy.check(other, inputs: [input], overwrite: true)
        try OutputPolicy.check(directory + "/new", inputs: [input], overwrite: false)
    }
}

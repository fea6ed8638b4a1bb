import Foundation
import Testing

/// Runs a shell script with `$EMBER` set to the built binary; the script is stopped after `timeout`
/// seconds, and `timedOut` says so (an endless read would otherwise hang the test).
struct ShellRun {
    var status: Int32
    var standardOutput: String
    var standardError: String
    var timedOut: Bool

    init(_ script: String, environment: [String: String] = [:], timeout: Double = 60) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        var variables = ProcessInfo.processInfo.environment
        variables["EMBER"] = CommandContractTests.executable.path
        for (name, value) in environment { variables[name] = value }
        process.environment = variables
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        timedOut = process.isRunning
        if timedOut {
            // The shell's children (`yes`, ember) are in its process group only with job control; kill
            // the ember children by parent id first, then the shell.
            _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/pkill"), arguments: ["-KILL", "-P", "\(process.processIdentifier)"])
            process.terminate()
        }
        let printed = output.fileHandleForReading.readDataToEndOfFile()
        let complaints = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        status = process.terminationStatus
        standardOutput = String(decoding: printed, as: UTF8.self)
        standardError = String(decoding: complaints, as: UTF8.self)
    }
}

/// `ember notes` given input that never ends, is too large, is not a file, or names a missing note:
/// one error line, a non-zero exit, bounded time and memory, and no note changed.
@Suite("ember notes bad input", .serialized)
struct NotesCommandBadInputTests {
    let directory: String

    init() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("ember-notes-input-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    func notes(_ arguments: [String], input: String? = nil) throws -> CommandContractTests.Output {
        try CommandContractTests.run(["notes", "--db", path("notes.db")] + arguments, input: input)
    }

    @Test("endless standard input and /dev/zero as --body-file: refused after the 2 MiB limit, in bounded memory")
    func endlessBody() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try notes(["add", "--title", "Keep", "--body", "me"])
        // Peak memory from GNU time when it is there; the refusal and the time limit either way.
        let measure = FileManager.default.isExecutableFile(atPath: "/usr/bin/time") ? "/usr/bin/time -f '%M' -o \"$TIME_FILE\"" : ""
        for source in ["yes", "cat /dev/zero"] {
            try? FileManager.default.removeItem(atPath: path("time.txt"))
            let run = try ShellRun("\(source) 2>/dev/null | \(measure) \"$EMBER\" notes --db \"$DB\" add --title y --body-file -",
                                   environment: ["DB": path("notes.db"), "TIME_FILE": path("time.txt")], timeout: 30)
            #expect(!run.timedOut, "\(source) | ember notes add --body-file - did not finish in 30 s")
            #expect(run.status == 1)
            #expect(run.standardError == "Error: standard input is larger than 2.0 MiB, the most a note holds; split it into smaller notes. Nothing was saved\n")
            // GNU time writes "Command exited with non-zero status 1", then the figure, on its own line.
            if let report = FileManager.default.contents(atPath: path("time.txt")),
               let kilobytes = String(decoding: report, as: UTF8.self).split(separator: "\n").last.flatMap({ Int($0) }) {
                #expect(kilobytes < 200_000, "peak \(kilobytes) KB reading endless input")
            }
        }
        let zero = try notes(["add", "--title", "y", "--body-file", "/dev/zero"])
        #expect(zero.status == 1)
        #expect(zero.standardError == "Error: /dev/zero is larger than 2.0 MiB, the most a note holds; split it into smaller notes. Nothing was saved\n")
        let edit = try notes(["edit", "1", "--body-file", "/dev/zero"])
        #expect(edit.status == 1 && edit.standardError.hasPrefix("Error: /dev/zero is larger than 2.0 MiB"))
        let listed = try notes(["list", "--all", "--json"])
        #expect(listed.standardOutput.contains("\"title\":\"Keep\"") && !listed.standardOutput.contains("\"title\":\"y\""))
    }

    @Test("a 10 MB --body-file is refused from its size, unread; a directory as --body-file is one line")
    func largeAndDirectoryBodies() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let huge = path("huge.md")
        try Data(String(repeating: "0123456789", count: 1_000_000).utf8).write(to: URL(fileURLWithPath: huge))
        let tooLarge = try notes(["add", "--title", "Huge", "--body-file", huge])
        #expect(tooLarge.status == 1)
        #expect(tooLarge.standardError == "Error: \(huge) is 9.5 MiB but a note holds at most 2.0 MiB; split it into smaller notes. Nothing was saved\n")
        let folder = try notes(["add", "--title", "x", "--body-file", directory])
        #expect(folder.status == 1)
        #expect(folder.standardError == "Error: \(directory) is a directory, not a file; nothing was saved\n")
        let title = try notes(["add", "--title", String(repeating: "t", count: 100_000)])
        #expect(title.status == 1)
        #expect(title.standardError.hasPrefix("Error: the title is 100000 bytes but a title holds at most 1024;"))
    }

    @Test("rm 1 999 changes nothing and names the missing id; rm --purge likewise")
    func removeIsAllOrNothing() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try notes(["add", "--title", "One", "--body", "1"])
        _ = try notes(["add", "--title", "Two", "--body", "2"])
        let missing = try notes(["rm", "1", "999"])
        #expect(missing.status == 1)
        #expect(missing.standardOutput.isEmpty)
        #expect(missing.standardError == "Error: there is no note 999; nothing was moved to the trash\n")
        let purge = try notes(["rm", "--purge", "2", "998", "997"])
        #expect(purge.standardError == "Error: there are no notes 998, 997; nothing was deleted\n")
        let listed = try notes(["list", "--json"])
        #expect(listed.standardOutput.contains("\"title\":\"One\"") && listed.standardOutput.contains("\"title\":\"Two\""))
        #expect(try notes(["list", "--trash", "--json"]).standardOutput == "[]\n")
        let both = try notes(["rm", "1", "2", "--json"])
        #expect(both.standardOutput == "{\"id\":1,\"trashed\":true}\n{\"id\":2,\"trashed\":true}\n")
    }

    @Test("--db naming a directory, a FIFO or a device is refused in one line, and nothing is created beside it")
    func databaseThatIsNoFile() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let folder = path("folder")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let fifo = path("fifo")
        #expect(mkfifo(fifo, 0o600) == 0)
        for (database, kind) in [(folder, "a directory"), (fifo, "a pipe")] {
            let result = try CommandContractTests.run(["notes", "--db", database, "add", "--title", "t", "--body", "b"])
            #expect(result.status == 1)
            #expect(result.standardError == "Error: \(database) is \(kind), not a notes database file; it was left as it is\n")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == ["fifo", "folder"])
        let journals = ["/dev/null-journal", "/dev/null-wal", "/dev/null-shm"]
        let before = journals.filter { FileManager.default.fileExists(atPath: $0) }
        let device = try CommandContractTests.run(["notes", "--db", "/dev/null", "list"])
        let created = journals.filter { FileManager.default.fileExists(atPath: $0) && !before.contains($0) }
        for file in created { try? FileManager.default.removeItem(atPath: file) }
        #expect(created.isEmpty)
        #expect(device.standardError == "Error: /dev/null is a device, not a notes database file; it was left as it is\n")
    }

    @Test("import of /dev/zero and of a directory holding a FIFO: one line each, nothing imported, no wait")
    func importIsBounded() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let device = try notes(["import", "/dev/zero"])
        #expect(device.status == 1)
        #expect(device.standardError == "Error: /dev/zero is larger than 2.1 MiB, the most a note file holds; split it into smaller notes. Nothing was imported\n")
        let folder = path("in")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Data("---\ntitle: Good\n---\nfine".utf8).write(to: URL(fileURLWithPath: folder + "/a.md"))
        #expect(mkfifo(folder + "/b.md", 0o600) == 0)
        let run = try ShellRun("\"$EMBER\" notes --db \"\(path("notes.db"))\" import \"\(folder)\"", timeout: 30)
        #expect(!run.timedOut, "import waited on a FIFO")
        #expect(run.status == 1)
        #expect(run.standardError == "Error: \(folder)/b.md is not a regular file; nothing was imported\n")
        #expect(try notes(["list", "--all", "--json"]).standardOutput == "[]\n")
    }
}

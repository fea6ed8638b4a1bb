import Foundation
import Testing

/// `ember notes …` run as a user runs it: JSON contracts, every subcommand, and bad input.
@Suite("ember notes commands", .serialized)
struct NotesCommandTests {
    let directory: String

    init() throws {
        directory = (NSTemporaryDirectory() as NSString).appendingPathComponent("ember-notes-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { (directory as NSString).appendingPathComponent(name) }

    /// Runs `ember notes --db DB …`.
    func notes(_ database: String, _ arguments: [String], input: String? = nil) throws -> CommandContractTests.Output {
        try CommandContractTests.run(["notes", "--db", database] + arguments, input: input)
    }

    func jsonArray(_ output: CommandContractTests.Output) -> [[String: Any]]? {
        (try? JSONSerialization.jsonObject(with: Data(output.standardOutput.utf8))) as? [[String: Any]]
    }

    @Test("every subcommand, end to end, with --json")
    func workflow() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = path("notes.db")
        let added = try notes(database, ["add", "--title", "Café résumé", "--body", "Ideas for the corner café", "--tag", "work", "--json"])
        #expect(added.status == 0, "\(added.standardError)")
        #expect(added.standardOutput == "{\"id\":1}\n")
        let stdin = try notes(database, ["add", "--title", "Budget", "--body-file", "-", "--pin", "--json"], input: "rent\nfood\n")
        #expect(stdin.standardOutput == "{\"id\":2}\n")

        let listed = try #require(jsonArray(try notes(database, ["list", "--json"])))
        #expect(listed.map { $0["id"] as? Int } == [2, 1], "pinned first")
        #expect(listed.first?["pinned"] as? Bool == true)

        let hits = try #require(jsonArray(try notes(database, ["search", "cafe", "resume", "--json"])))
        #expect(hits.map { $0["title"] as? String } == ["Café résumé"])
        #expect((hits.first?["snippet"] as? String)?.contains("[Café]") == true)

        #expect(try notes(database, ["edit", "1", "--body", "Second draft"]).standardOutput == "saved note 1\n")
        #expect(try notes(database, ["tag", "1", "ideas", "big plans"]).status == 0)
        #expect(try notes(database, ["summarize", "1", "--text", "Café ideas.", "--model", "me"]).status == 0)
        let shown = try #require(try notes(database, ["show", "1", "--versions", "--json"]).json)
        #expect(shown["body"] as? String == "Second draft")
        #expect(shown["tags"] as? [String] == ["big plans", "ideas", "work"])
        #expect((shown["versions"] as? [[String: Any]])?.map { $0["body"] as? String } == ["Ideas for the corner café"])
        #expect((shown["summaries"] as? [[String: Any]])?.first?["stale"] as? Bool == false)

        let restored = try notes(database, ["restore", "1", "--version", "1", "--json"])
        #expect(restored.json?["body"] as? String == "Ideas for the corner café")
        let stale = try #require(try notes(database, ["show", "1", "--json"]).json)
        #expect((stale["summaries"] as? [[String: Any]])?.first?["stale"] as? Bool == true)

        #expect(try notes(database, ["rm", "2"]).standardOutput == "moved note 2 to the trash\n")
        #expect(try #require(jsonArray(try notes(database, ["list", "--trash", "--json"]))).map { $0["id"] as? Int } == [2])
        #expect(try notes(database, ["restore", "2"]).standardOutput == "restored note 2 from the trash\n")

        let exported = try notes(database, ["export", path("out"), "--json"])
        #expect((exported.json?["files"] as? [String])?.count == 2)
        let imported = try notes(path("copy.db"), ["import", path("out"), "--json"])
        #expect(imported.json?["ids"] as? [Int] == [1, 2])
        let copy = try #require(try notes(path("copy.db"), ["show", "1", "--json"]).json)
        #expect(copy["title"] as? String == "Café résumé" && copy["body"] as? String == "Ideas for the corner café")

        #expect(try notes(database, ["rm", "2", "--purge"]).status == 0)
        let gone = try notes(database, ["show", "2"])
        #expect(gone.status == 1)
        #expect(gone.standardError == "Error: there is no note 2\n")
    }

    @Test("summarize of a missing note is one error line; nothing runs")
    func summarizeMissingNote() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = path("notes.db")
        _ = try notes(database, ["add", "--title", "x", "--body", "y"])
        let result = try notes(database, ["summarize", "7"])
        #expect(result.status != 0)
        #expect(result.standardError == "Error: there is no note 7\n")
    }

    @Test("bad input: one error line, a non-zero exit, and nothing stored is lost")
    func badInput() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let database = path("notes.db")
        _ = try notes(database, ["add", "--title", "Keep", "--body", "me"])

        // Invalid UTF-8 on standard input and as an argument (the shell passes raw bytes).
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", "printf 'caf\\351' | \"$0\" notes --db \"$1\" add --title x --body-file - ; echo \"status $?\"; "
            + "\"$0\" notes --db \"$1\" add --title \"$(printf 'bad\\377')\" ; echo \"status $?\"",
                             CommandContractTests.executable.path, database]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let complaints = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(printed == "status 1\nstatus 1\n")
        #expect(complaints == "Error: standard input is not valid UTF-8 (the first bad byte is at offset 3); nothing was saved\n"
            + "Error: command-line argument 6 is not valid UTF-8 (the first bad byte is at offset 3); nothing was changed\n")

        // A 10 MB body.
        let huge = path("huge.md")
        try Data(String(repeating: "0123456789", count: 1_000_000).utf8).write(to: URL(fileURLWithPath: huge))
        let tooLarge = try notes(database, ["add", "--title", "Huge", "--body-file", huge])
        #expect(tooLarge.status == 1)
        // Refused from its size before it is read.
        #expect(tooLarge.standardError == "Error: \(huge) is 9.5 MiB but a note holds at most 2.0 MiB; split it into smaller notes. "
            + "Nothing was saved\n")

        let listed = try #require(jsonArray(try notes(database, ["list", "--all", "--json"])))
        #expect(listed.map { $0["title"] as? String } == ["Keep"])

        // A file that is not SQLite, and a database that does not exist.
        let text = path("shopping.txt")
        try Data("eggs, milk\n".utf8).write(to: URL(fileURLWithPath: text))
        let notDatabase = try notes(text, ["list"])
        #expect(notDatabase.status == 1)
        #expect(notDatabase.standardError == "Error: \(text) is not an SQLite database; it was left as it is\n")
        #expect(FileManager.default.contents(atPath: text) == Data("eggs, milk\n".utf8))
        let missing = try notes(path("none.db"), ["search", "x"])
        #expect(missing.standardError == "Error: there is no notes database at \(path("none.db")); `ember notes --db \(path("none.db")) add` creates one\n")
        #expect(!FileManager.default.fileExists(atPath: path("none.db")))
    }

    @Test("help lists the subcommands and hides the kill test's writer")
    func help() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let help = try CommandContractTests.run(["notes", "--help"])
        for name in ["add", "edit", "list", "show", "search", "tag", "rm", "restore", "export", "import", "summarize"] {
            #expect(help.standardOutput.contains("\n  \(name) "), "\(name)")
        }
        #expect(!help.standardOutput.contains("stress-writer"))
    }
}

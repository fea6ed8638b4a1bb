import Foundation
import Testing

/// Every command that writes a file: a device, a directory, one of its own inputs or (without
/// `--overwrite`) an existing file is refused in one line and left as it was; a failed write
/// leaves no temporary file beside the target.
@Suite("ember output files never replace anything without asking", .serialized)
struct OutputSafetyTests {
    static func run(_ arguments: [String]) throws -> CommandContractTests.Output {
        try CommandContractTests.run(arguments)
    }

    /// A scratch directory with a tiny model, its container, a patch, a scenario and a profile.
    final class Workspace {
        let directory: String
        init() throws {
            directory = NSTemporaryDirectory() + "ember-output-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Fixtures/tiny-models").path
            try FileManager.default.copyItem(atPath: fixtures + "/phi3-q8_0.gguf", toPath: model)
            try """
            {"name":"short","description":"","duration_s":120,"start":{"battery_pct":70,"ambient_c":25},
             "events":[{"at_s":0,"type":"chat","prompt_tokens":64,"response_tokens":16,"repeat_every_s":30}]}
            """.write(toFile: scenario, atomically: true, encoding: .utf8)
            let pack = try OutputSafetyTests.run(["pack", "--model", model, "--output", container])
            guard pack.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["stderr": pack.standardError]) }
            // A patch to another model's container: every chunk changed, so rebuilding writes them all.
            let other = try OutputSafetyTests.run(["pack", "--model", fixtures + "/mistral3-q8_0.gguf", "--output", path("other.ggz")])
            guard other.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["stderr": other.standardError]) }
            let diff = try OutputSafetyTests.run(["pack", "diff", container, path("other.ggz"), "--output", patch])
            guard diff.status == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: ["stderr": diff.standardError]) }
        }
        deinit { try? FileManager.default.removeItem(atPath: directory) }

        func path(_ name: String) -> String { directory + "/" + name }
        var model: String { path("model.gguf") }
        var container: String { path("model.ggz") }
        var patch: String { path("update.patch") }
        var scenario: String { path("scenario.json") }

        /// Every command that writes a file, with `target` as its output.
        func writers(_ target: String) -> [(name: String, arguments: [String])] {
            let simulation = ["--scenario", scenario, "--model-spec", "gemma3-270m-q4_k_m", "--profile", "flagship-android"]
            return [
                ("unpack", ["unpack", container, "--output", target]),
                ("pack", ["pack", "--model", model, "--output", target]),
                ("pack diff", ["pack", "diff", container, container, "--output", target]),
                ("pack rebuild", ["pack", "rebuild", container, patch, "--output", target]),
                ("sim --timeline", ["sim", "--cost-model", "--timeline", target] + simulation),
                ("sim --report", ["sim", "--cost-model", "--report", target] + simulation),
                ("sim compare --report", ["sim", "compare", "--report", target] + simulation),
                ("sim sweep --output", ["sim", "sweep", "--profiles", "flagship-android", "--scenarios", scenario,
                                        "--model-spec", "gemma3-270m-q4_k_m", "--output", target]),
            ]
        }

        /// Files in the directory whose names mark a temporary output.
        var temporaryFiles: [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.contains(".partial") }
        }
    }

    static func fileType(_ path: String) -> FileAttributeType? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
    }

    static func expectOneLineRefusal(_ result: CommandContractTests.Output, naming target: String, _ label: String) {
        #expect(result.status != 0, "\(label) was not refused")
        let lines = result.standardError.split(separator: "\n")
        #expect(lines.count == 1, "\(label): \(result.standardError)")
        #expect(result.standardError.contains(target), "\(label) does not name \(target): \(result.standardError)")
    }

    @Test("A device target (/dev/null) is refused, with and without --overwrite, and stays a character device")
    func deviceTarget() throws {
        let workspace = try Workspace()
        for (name, arguments) in workspace.writers("/dev/null") {
            for extra in [[], ["--overwrite"]] {
                let result = try Self.run(arguments + extra)
                Self.expectOneLineRefusal(result, naming: "/dev/null", name + extra.joined())
                #expect(result.standardError.contains("character device"), "\(name): \(result.standardError)")
                #expect(Self.fileType("/dev/null") == .typeCharacterSpecial, "\(name) replaced /dev/null")
            }
        }
    }

    @Test("A symlink to a device, a directory and a fifo are refused and left as they are")
    func specialTargets() throws {
        let workspace = try Workspace()
        let link = workspace.path("null-link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/dev/null")
        let folder = workspace.path("folder")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let fifo = workspace.path("fifo")
        #expect(mkfifo(fifo, 0o644) == 0)
        for target in [link, folder, fifo] {
            for (name, arguments) in workspace.writers(target) {
                Self.expectOneLineRefusal(try Self.run(arguments + ["--overwrite"]), naming: target, "\(name) → \(target)")
            }
        }
        #expect(Self.fileType(link) == .typeSymbolicLink)
        #expect(Self.fileType("/dev/null") == .typeCharacterSpecial)
        #expect(Self.fileType(folder) == .typeDirectory)
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder).isEmpty)
        #expect(Self.fileType(fifo) != .typeRegular)
        #expect(workspace.temporaryFiles.isEmpty)
    }

    @Test("An output that is the command's own input is refused, also through a symlink or hard link, and the input keeps its bytes")
    func outputIsInput() throws {
        let workspace = try Workspace()
        let symlink = workspace.path("container-link.ggz"), hardLink = workspace.path("container-hard.ggz")
        try FileManager.default.createSymbolicLink(atPath: symlink, withDestinationPath: workspace.container)
        try FileManager.default.linkItem(atPath: workspace.container, toPath: hardLink)
        let cases: [(String, [String], String)] = [
            ("unpack", ["unpack", workspace.container, "--output", workspace.container], workspace.container),
            ("unpack via symlink", ["unpack", workspace.container, "--output", symlink], workspace.container),
            ("unpack via hard link", ["unpack", workspace.container, "--output", hardLink], workspace.container),
            ("pack", ["pack", "--model", workspace.model, "--output", workspace.model], workspace.model),
            ("pack diff", ["pack", "diff", workspace.container, workspace.container, "--output", workspace.container], workspace.container),
            ("pack rebuild onto old", ["pack", "rebuild", workspace.container, workspace.patch, "--output", workspace.container], workspace.container),
            ("pack rebuild onto patch", ["pack", "rebuild", workspace.container, workspace.patch, "--output", workspace.patch], workspace.patch),
            ("sim --timeline", ["sim", "--cost-model", "--scenario", workspace.scenario, "--model-spec", "gemma3-270m-q4_k_m",
                                "--timeline", workspace.scenario], workspace.scenario),
            ("sim --report", ["sim", "--cost-model", "--scenario", workspace.scenario, "--model-spec", "gemma3-270m-q4_k_m",
                              "--report", workspace.scenario], workspace.scenario),
            ("sim compare", ["sim", "compare", "--scenario", workspace.scenario, "--model-spec", "gemma3-270m-q4_k_m",
                             "--report", workspace.scenario], workspace.scenario),
            ("sim sweep", ["sim", "sweep", "--profiles", "flagship-android", "--scenarios", workspace.scenario,
                           "--model-spec", "gemma3-270m-q4_k_m", "--output", workspace.scenario], workspace.scenario),
        ]
        for (name, arguments, input) in cases {
            let before = try #require(FileManager.default.contents(atPath: input))
            let result = try Self.run(arguments + ["--overwrite"])
            Self.expectOneLineRefusal(result, naming: arguments.last!, name)
            #expect(result.standardError.contains("is the input"), "\(name): \(result.standardError)")
            #expect(FileManager.default.contents(atPath: input) == before, "\(name) changed its input")
        }
        #expect(Self.fileType(symlink) == .typeSymbolicLink)
        #expect(workspace.temporaryFiles.isEmpty)
    }

    @Test("An existing file is refused without --overwrite (and keeps its bytes) and replaced with it")
    func existingFile() throws {
        let workspace = try Workspace()
        let target = workspace.path("existing")
        for (name, arguments) in workspace.writers(target) {
            try "keep me".write(toFile: target, atomically: false, encoding: .utf8)
            let refused = try Self.run(arguments)
            Self.expectOneLineRefusal(refused, naming: target, name)
            #expect(refused.standardError.contains("--overwrite"), "\(name): \(refused.standardError)")
            #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep me", "\(name) replaced the file without --overwrite")
            let replaced = try Self.run(arguments + ["--overwrite"])
            #expect(replaced.status == 0, "\(name) --overwrite: \(replaced.standardError)")
            let bytes = try #require(FileManager.default.contents(atPath: target))
            #expect(bytes != Data("keep me".utf8) && bytes.count > 0, "\(name) --overwrite did not replace the file")
            #expect(Self.fileType(target) == .typeRegular)
        }
        #expect(workspace.temporaryFiles.isEmpty)
    }

    @Test("Two outputs of one command may not be the same file")
    func sameOutputTwice() throws {
        let workspace = try Workspace()
        let target = workspace.path("both")
        let result = try Self.run(["sim", "--cost-model", "--scenario", workspace.scenario, "--model-spec", "gemma3-270m-q4_k_m",
                                   "--timeline", target, "--report", target])
        Self.expectOneLineRefusal(result, naming: target, "--timeline and --report")
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test("sim --timeline into a folder that does not exist fails in one line before the run prints anything")
    func missingFolder() throws {
        let workspace = try Workspace()
        let target = workspace.path("no-such-folder/t.csv")
        let result = try Self.run(["sim", "--cost-model", "--scenario", workspace.scenario, "--model-spec", "gemma3-270m-q4_k_m",
                                   "--timeline", target])
        Self.expectOneLineRefusal(result, naming: "no-such-folder", "missing folder")
        #expect(result.standardOutput.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: workspace.path("no-such-folder")))
    }

    @Test("A write that fails part-way (a damaged container or patch) leaves no temporary file and the old target as it was")
    func failedWrite() throws {
        let workspace = try Workspace()
        var damaged = try #require(FileManager.default.contents(atPath: workspace.container))
        damaged[damaged.count / 2] ^= 0x10
        let damagedContainer = workspace.path("damaged.ggz")
        try damaged.write(to: URL(fileURLWithPath: damagedContainer))
        var patch = try #require(FileManager.default.contents(atPath: workspace.patch))
        patch[patch.count / 2] ^= 0x10
        let damagedPatch = workspace.path("damaged.patch")
        try patch.write(to: URL(fileURLWithPath: damagedPatch))

        let target = workspace.path("kept")
        try "old bytes".write(toFile: target, atomically: false, encoding: .utf8)
        let cases = [
            ("unpack", ["unpack", damagedContainer, "--output", target, "--overwrite"]),
            ("pack rebuild", ["pack", "rebuild", workspace.container, damagedPatch, "--output", target, "--overwrite"]),
        ]
        for (name, arguments) in cases {
            let result = try Self.run(arguments)
            #expect(result.status != 0, "\(name) did not fail")
            #expect(result.standardError.split(separator: "\n").count == 1, "\(name): \(result.standardError)")
            #expect(workspace.temporaryFiles.isEmpty, "\(name) left \(workspace.temporaryFiles)")
            #expect(try String(contentsOfFile: target, encoding: .utf8) == "old bytes", "\(name) changed the old target")
        }
        // Nothing at all when the target is new.
        let fresh = workspace.path("fresh.gguf")
        #expect(try Self.run(["unpack", damagedContainer, "--output", fresh]).status != 0)
        #expect(!FileManager.default.fileExists(atPath: fresh))
        #expect(workspace.temporaryFiles.isEmpty)
    }
}

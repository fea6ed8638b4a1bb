import ArgumentParser
import EmberCore
import EmberStorage
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `ember fuzz`: seeded random mutation of everything a user hands Ember — GGUF metadata (changed in
/// meaning: counts, dimensions, arrays, types, tensors), raw GGUF header bytes, containers, device
/// profiles, scenarios and command lines — run by the real commands in worker processes. Counts
/// crashes, hangs and memory peaks; each finding names a case to replay. `make fuzz` runs a long
/// campaign; the test suite runs a short one.
struct FuzzCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Fuzz the CLI with mutated models, containers, profiles, scenarios and arguments; count crashes, hangs and memory peaks.",
        shouldDisplay: false)

    @Option(name: .long, help: "Seed: case i of seed s is always the same input.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "How many cases to run.")
    var executions: Int = 10_000

    @Option(name: .long, help: "The first case's index (to continue a campaign).")
    var first: Int = 0

    @Option(name: .long, help: "Worker processes (default: all cores).")
    var workers: Int?

    @Option(name: .long, help: "A case still running after this many seconds is a hang.")
    var hangSeconds: Double = 10

    @Option(name: .long, help: "A case whose peak resident memory passes this is a finding.")
    var memoryLimit: String = "1GiB"

    @Option(name: .long, help: "Folder of the tiny test models to mutate.")
    var fixtures: String = "Tests/Fixtures/tiny-models"

    @Option(name: .long, help: "Folder of the device profiles to mutate.")
    var profiles: String = "Profiles"

    @Option(name: .long, help: "Run one case in this process, with its output shown, and print its arguments.")
    var replay: Int?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Option(name: .long, help: .hidden)
    var workerRange: String?

    @Option(name: .long, help: .hidden)
    var scratch: String?

    func validate() throws {
        guard executions >= 0, executions <= 100_000_000 else { throw ValidationError("--executions must be between 0 and 100000000, not \(executions).") }
        guard first >= 0 else { throw ValidationError("--first must not be negative, not \(first).") }
        if let workers, !(1...64).contains(workers) { throw ValidationError("--workers must be between 1 and 64, not \(workers).") }
        guard hangSeconds.isFinite, hangSeconds > 0, hangSeconds <= 3_600 else { throw ValidationError("--hang-seconds must be more than 0 and at most 3600, not \(hangSeconds).") }
        guard let limit = ByteCount.parse(memoryLimit), limit >= 1 << 20 else { throw ValidationError("--memory-limit takes a size of at least 1MiB like 1GiB, not '\(memoryLimit)'.") }
    }

    func run() async throws {
        if let workerRange {
            try await runWorker(workerRange)
            return
        }
        let scratchRoot = try scratch ?? Self.makeTemporaryDirectory()
        let containerPath = "\(scratchRoot)/base.ggz"
        try await packContainer(to: containerPath, scratch: scratchRoot)
        if let replay {
            try await replayCase(replay, scratch: scratchRoot, containerPath: containerPath)
            return
        }
        try await campaign(scratch: scratchRoot, containerPath: containerPath)
    }

    // MARK: The campaign

    private func campaign(scratch: String, containerPath: String) async throws {
        let workerCount = workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount)
        let limitKiB = (ByteCount.parse(memoryLimit) ?? 1 << 30) / 1024
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let supervisor = FuzzSupervisor(
            executable: executable,
            workerArguments: ["fuzz", "--seed", String(seed), "--fixtures", fixtures, "--profiles", profiles],
            hangSeconds: hangSeconds, memoryLimitKiB: limitKiB)
        let start = Date()
        let counter = ProgressCounter(total: executions, showing: isatty(STDERR_FILENO) == 1)
        var tally = FuzzTally()
        let share = (executions + workerCount - 1) / max(1, workerCount)
        await withTaskGroup(of: FuzzTally.self) { group in
            for worker in 0..<workerCount {
                let lower = first + worker * share
                let upper = min(first + executions, lower + share)
                guard lower < upper else { continue }
                let directory = "\(scratch)/worker-\(worker)"
                try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                group.addTask {
                    // A blocking supervisor per worker, on its own thread.
                    await withCheckedContinuation { continuation in
                        Thread.detachNewThread {
                            continuation.resume(returning: supervisor.run(range: lower..<upper, scratch: directory) { counter.add($0) })
                        }
                    }
                }
            }
            for await partial in group { tally.merge(partial) }
        }
        counter.finish()
        let seconds = Date().timeIntervalSince(start)
        try? FileManager.default.removeItem(atPath: scratch)
        print(render(tally, seconds: seconds, workers: workerCount))
        if !tally.findings.isEmpty { throw ExitCode(1) }
    }

    private func render(_ tally: FuzzTally, seconds: Double, workers: Int) -> String {
        let findings = tally.findings.sorted { $0.index < $1.index }
        if json {
            let kinds = tally.executionsByKind.keys.sorted().map { "\(JSONString.quote($0)):\(tally.executionsByKind[$0]!)" }.joined(separator: ",")
            let listed = findings.prefix(100).map {
                "{\"kind\":\(JSONString.quote($0.kind.rawValue)),\"index\":\($0.index),\"detail\":\(JSONString.quote($0.detail))}"
            }.joined(separator: ",")
            return "{\"seed\":\(seed),\"first\":\(first),\"executions\":\(tally.executions),\"crashes\":\(tally.count(.crash)),"
                + "\"hangs\":\(tally.count(.hang)),\"memory_peaks_over_limit\":\(tally.count(.memory)),\"unexpected_exits\":\(tally.count(.exit)),"
                + "\"destroyed_devices\":\(tally.count(.destroyedDevice)),\"setup_errors\":\(tally.setupErrors),"
                + "\"peak_resident_mib\":\(tally.peakResidentKiB / 1024),\"slowest_case_ms\":\(tally.slowestMilliseconds),"
                + "\"seconds\":\(String(format: "%.1f", seconds)),\"workers\":\(workers),\"by_kind\":{\(kinds)},\"findings\":[\(listed)]}"
        }
        var lines = [
            "fuzz seed \(seed), cases \(first)..<\(first + executions): \(tally.executions) executions in \(String(format: "%.0f", seconds)) s on \(workers) workers",
            "crashes \(tally.count(.crash)), hangs over \(hangSeconds) s \(tally.count(.hang)), memory peaks over \(memoryLimit) \(tally.count(.memory)), "
                + "unexpected exits \(tally.count(.exit)), destroyed devices \(tally.count(.destroyedDevice))",
            "largest peak \(tally.peakResidentKiB / 1024) MiB, slowest case \(tally.slowestMilliseconds) ms; by kind: "
                + tally.executionsByKind.keys.sorted().map { kind in
                    let count = tally.executionsByKind[kind]!
                    return "\(kind) \(count) (mean \((tally.millisecondsByKind[kind] ?? 0) / max(1, count)) ms)"
                }.joined(separator: ", "),
        ]
        for finding in findings.prefix(20) {
            lines.append("  \(finding.kind.rawValue) at case \(finding.index) (\(finding.detail)): replay with `ember fuzz --seed \(seed) --replay \(finding.index)`")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Workers and replays

    private func runWorker(_ range: String) async throws {
        let bounds = range.split(separator: ":").compactMap { Int($0) }
        guard bounds.count == 2, bounds[0] <= bounds[1], let scratch else { throw ValidationError("--worker-range takes START:END with --scratch.") }
        let maker = try makeCaseMaker(scratch: scratch, containerPath: "\(scratch)/../base.ggz")
        let reportDescriptor = dup(1)
        // Cases must not reach this process's working directory: they run inside their own.
        _ = FileManager.default.changeCurrentDirectoryPath(maker.directory)
        await FuzzWorker(seed: seed, range: bounds[0]..<bounds[1], maker: maker, reportDescriptor: reportDescriptor).run()
    }

    private func replayCase(_ index: Int, scratch: String, containerPath: String) async throws {
        let directory = "\(scratch)/replay"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let maker = try makeCaseMaker(scratch: directory, containerPath: containerPath)
        let fuzzCase = try maker.make(seed: seed, index: index)
        let input = "\(maker.directory)/standard-input"
        _ = FileManager.default.createFile(atPath: input, contents: Data(fuzzCase.standardInput))
        let line = "case \(index) (\(fuzzCase.kind)) in \(maker.directory): ember "
            + fuzzCase.arguments.map(JSONString.quote).joined(separator: " ") + " < \(input)\n"
        FileHandle.standardOutput.write(Data(line.utf8))
        let descriptor = open(input, O_RDONLY)
        if descriptor >= 0 { dup2(descriptor, 0); close(descriptor) }
        await FuzzWorker.runInProcess(fuzzCase.arguments)
    }

    private func makeCaseMaker(scratch: String, containerPath: String) throws -> FuzzCaseMaker {
        var inputs = try FuzzInputs.load(fixtures: absolute(fixtures), profilesDirectory: absolute(profiles))
        inputs.containerBytes = Array(try Data(contentsOf: URL(fileURLWithPath: containerPath)))
        let directory = "\(scratch)/case"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return FuzzCaseMaker(inputs: inputs, directory: directory)
    }

    /// The container the container cases damage: the first tiny model, packed in small chunks.
    private func packContainer(to path: String, scratch: String) async throws {
        guard let model = FuzzInputs.modelNames.map({ "\(absolute(fixtures))/\($0).gguf" }).first(where: FileManager.default.fileExists) else {
            throw ValidationError("no tiny models in \(fixtures); run scripts/tiny_models/write_fixtures.sh")
        }
        try ContainerWriter(level: 3, chunkByteCount: 64 << 10, threads: 1).pack(ggufPath: model, to: path)
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    private static func makeTemporaryDirectory() throws -> String {
        var template = Array((NSTemporaryDirectory() + "/ember-fuzz-XXXXXX").utf8CString)
        guard let pointer = mkdtemp(&template) else { throw ValidationError("cannot create a scratch folder in \(NSTemporaryDirectory())") }
        return String(cString: pointer)
    }
}

/// Counts finished cases from several supervisor threads and shows the count on a terminal.
final class ProgressCounter: @unchecked Sendable {
    // Invariant: `done` and `lastShown` are touched only under `lock`.
    private let lock = NSLock()
    private var done = 0
    private var lastShown = 0
    private let total: Int
    private let showing: Bool

    init(total: Int, showing: Bool) {
        self.total = total
        self.showing = showing
    }

    func add(_ count: Int) {
        lock.lock()
        defer { lock.unlock() }
        done += count
        if showing, done - lastShown >= 1_000 || done == total {
            lastShown = done
            FileHandle.standardError.write(Data("\r\u{1B}[Kfuzz: \(done) of \(total) cases".utf8))
        }
    }

    func finish() {
        if showing { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}

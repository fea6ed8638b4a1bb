import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the fuzzer found: each a case index that can be replayed with `ember fuzz --replay`.
struct FuzzFinding: Sendable {
    enum Kind: String, Sendable { case crash, hang, memory, exit, destroyedDevice = "destroyed-device" }
    var kind: Kind
    var index: Int
    var detail: String
}

/// Totals of a fuzz run.
struct FuzzTally: Sendable {
    var executions = 0
    var findings: [FuzzFinding] = []
    var executionsByKind: [String: Int] = [:]
    var millisecondsByKind: [String: Int] = [:]
    var peakResidentKiB = 0
    var slowestMilliseconds = 0
    var setupErrors = 0

    func count(_ kind: FuzzFinding.Kind) -> Int { findings.filter { $0.kind == kind }.count }

    mutating func merge(_ other: FuzzTally) {
        executions += other.executions
        findings += other.findings
        executionsByKind.merge(other.executionsByKind, uniquingKeysWith: +)
        millisecondsByKind.merge(other.millisecondsByKind, uniquingKeysWith: +)
        peakResidentKiB = max(peakResidentKiB, other.peakResidentKiB)
        slowestMilliseconds = max(slowestMilliseconds, other.slowestMilliseconds)
        setupErrors += other.setupErrors
    }
}

/// Runs a range of cases in worker processes, restarting a worker after the case that killed it:
/// a death by signal is a crash, a case that does not finish within `hangSeconds` is a hang (the
/// worker is killed), a case whose peak resident set passes `memoryLimitKiB` is a memory finding
/// (and a worker past four times the limit is killed before it takes the machine).
struct FuzzSupervisor {
    let executable: String
    let workerArguments: [String]
    let hangSeconds: Double
    let memoryLimitKiB: Int
    /// Cases a worker runs before it is replaced by a fresh process.
    let casesPerWorker = 4_000

    func run(range: Range<Int>, scratch: String, progress: @Sendable (Int) -> Void) -> FuzzTally {
        var tally = FuzzTally()
        var next = range.lowerBound
        while next < range.upperBound {
            let end = min(range.upperBound, next + casesPerWorker)
            let (partial, resume) = runWorker(range: next..<end, scratch: scratch, progress: progress)
            tally.merge(partial)
            next = resume
        }
        return tally
    }

    /// One worker process over `range`; returns what it saw and the index to continue from.
    private func runWorker(range: Range<Int>, scratch: String, progress: @Sendable (Int) -> Void) -> (FuzzTally, Int) {
        var tally = FuzzTally()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = workerArguments + ["--worker-range", "\(range.lowerBound):\(range.upperBound)", "--scratch", scratch]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        // A crash is counted here; the runtime's backtrace would cost a second each.
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = environment
        do { try process.run() } catch {
            tally.findings.append(FuzzFinding(kind: .exit, index: range.lowerBound, detail: "worker did not start: \(error)"))
            return (tally, range.upperBound)
        }
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        var buffer: [UInt8] = []
        var current: Int?  // the case started and not yet reported done
        var started = DispatchTime.now().uptimeNanoseconds
        var completed = range.lowerBound
        var killedFor: FuzzFinding?
        var lastMemoryCheck = started

        func handle(_ line: Substring) {
            let fields = line.split(separator: " ", maxSplits: 4)
            guard fields.count >= 2, let index = Int(fields[1]) else { return }
            switch fields[0] {
            case "S":
                current = index
                started = DispatchTime.now().uptimeNanoseconds
            case "D":
                current = nil
                completed = index + 1
                tally.executions += 1
                progress(1)
                let peak = fields.count > 2 ? Int(fields[2]) ?? 0 : 0
                let milliseconds = fields.count > 3 ? Int(fields[3]) ?? 0 : 0
                let kind = fields.count > 4 ? String(fields[4]) : "?"
                tally.executionsByKind[kind, default: 0] += 1
                tally.millisecondsByKind[kind, default: 0] += milliseconds
                tally.peakResidentKiB = max(tally.peakResidentKiB, peak)
                tally.slowestMilliseconds = max(tally.slowestMilliseconds, milliseconds)
                if peak > memoryLimitKiB {
                    tally.findings.append(FuzzFinding(kind: .memory, index: index, detail: "\(kind): peak \(peak / 1024) MiB"))
                }
                if !Self.isCharacterDevice("/dev/null") {
                    tally.findings.append(FuzzFinding(kind: .destroyedDevice, index: index, detail: "\(kind): /dev/null is no longer a device"))
                    Self.restoreDevNull()
                }
            case "E":
                tally.setupErrors += 1
                completed = index + 1
            default: break
            }
        }

        var reading = true
        while reading {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 200)
            if ready > 0 {
                var chunk = [UInt8](repeating: 0, count: 65_536)
                let count = read(descriptor, &chunk, chunk.count)
                if count <= 0 {
                    reading = false
                } else {
                    buffer += chunk[0..<count]
                    while let newline = buffer.firstIndex(of: 0x0A) {
                        let line = String(decoding: buffer[..<newline], as: UTF8.self)
                        buffer.removeSubrange(...newline)
                        handle(Substring(line))
                    }
                }
            }
            let now = DispatchTime.now().uptimeNanoseconds
            if let index = current, killedFor == nil {
                if Double(now - started) / 1e9 > hangSeconds {
                    killedFor = FuzzFinding(kind: .hang, index: index, detail: "no end after \(hangSeconds) s")
                    kill(process.processIdentifier, SIGKILL)
                } else if now - lastMemoryCheck > 100_000_000 {
                    lastMemoryCheck = now
                    if let resident = FuzzWorker.statusField("VmRSS", processIdentifier: process.processIdentifier), resident > 4 * memoryLimitKiB {
                        killedFor = FuzzFinding(kind: .memory, index: index, detail: "resident \(resident / 1024) MiB, killed")
                        kill(process.processIdentifier, SIGKILL)
                    }
                }
            }
        }
        process.waitUntilExit()
        if let killedFor {
            tally.findings.append(killedFor)
            return (tally, killedFor.index + 1)
        }
        if let index = current {
            // The worker died inside a case.
            let how = process.terminationReason == .uncaughtSignal
                ? "signal \(process.terminationStatus)" : "exit status \(process.terminationStatus)"
            let kind: FuzzFinding.Kind = process.terminationReason == .uncaughtSignal ? .crash : .exit
            tally.findings.append(FuzzFinding(kind: kind, index: index, detail: how))
            return (tally, index + 1)
        }
        if completed < range.upperBound {
            tally.findings.append(FuzzFinding(kind: .exit, index: completed, detail: "worker ended early (status \(process.terminationStatus))"))
            return (tally, completed + 1)
        }
        return (tally, range.upperBound)
    }

    static func isCharacterDevice(_ path: String) -> Bool {
        var status = stat()
        return lstat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFCHR
    }

    /// Puts /dev/null back (character device 1:3) if a case replaced it, so the run can go on.
    static func restoreDevNull() {
        unlink("/dev/null")
        _ = mknod("/dev/null", S_IFCHR | 0o666, dev_t(0x103))  // major 1, minor 3
        chmod("/dev/null", 0o666)
    }
}

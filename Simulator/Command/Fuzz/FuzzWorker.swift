import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Runs fuzz cases in this process, one after another, as `ember` would run them from a shell:
/// parsed by the same root command and run to the end. Errors are the expected outcome of bad input
/// and are ignored here; what the supervisor looks for is a process that dies, stops reporting or
/// grows. Each case is announced before it starts (`S index`) and reported when it ends
/// (`D index peak-KiB milliseconds`), on the descriptor the supervisor reads.
struct FuzzWorker {
    let seed: UInt64
    let range: Range<Int>
    let maker: FuzzCaseMaker
    let reportDescriptor: Int32

    func run() async {
        let quiet = open("/dev/null", O_RDWR)
        for index in range {
            clearDirectory(maker.directory)
            let fuzzCase: FuzzCase
            do {
                fuzzCase = try maker.make(seed: seed, index: index)
            } catch {
                report("E \(index) \(String(describing: error).replacingOccurrences(of: "\n", with: " "))")
                continue
            }
            let input = "\(maker.directory)/standard-input"
            _ = FileManager.default.createFile(atPath: input, contents: Data(fuzzCase.standardInput))
            let inputDescriptor = open(input, O_RDONLY)
            if inputDescriptor >= 0 { dup2(inputDescriptor, 0); close(inputDescriptor) }
            dup2(quiet, 1)
            dup2(quiet, 2)
            report("S \(index)")
            resetPeakMemory()
            let start = DispatchTime.now().uptimeNanoseconds
            await Self.runInProcess(fuzzCase.arguments)
            let milliseconds = (DispatchTime.now().uptimeNanoseconds - start) / 1_000_000
            report("D \(index) \(peakResidentKiB()) \(milliseconds) \(fuzzCase.kind)")
        }
    }

    /// Parses and runs `arguments` with the `ember` root command, as its `main` would.
    static func runInProcess(_ arguments: [String]) async {
        do {
            try await EmberMain.execute(arguments)
        } catch {
            // Refusing bad input is the point; the message went to the (silenced) standard error.
        }
    }

    private func report(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        bytes.withUnsafeBytes { buffer in
            var written = 0
            while written < buffer.count {
                let result = write(reportDescriptor, buffer.baseAddress! + written, buffer.count - written)
                if result <= 0 { if errno == EINTR { continue }; exit(3) }  // the supervisor is gone
                written += result
            }
        }
    }

    private func clearDirectory(_ directory: String) {
        let manager = FileManager.default
        for name in (try? manager.contentsOfDirectory(atPath: directory)) ?? [] {
            try? manager.removeItem(atPath: "\(directory)/\(name)")
        }
    }

    /// Starts a new peak-RSS measurement (Linux: writing 5 to clear_refs resets VmHWM).
    private func resetPeakMemory() {
        let descriptor = open("/proc/self/clear_refs", O_WRONLY)
        guard descriptor >= 0 else { return }
        _ = write(descriptor, "5", 1)
        close(descriptor)
    }

    private func peakResidentKiB() -> Int {
        FuzzWorker.statusField("VmHWM", processIdentifier: nil) ?? 0
    }

    /// A `kB` field of /proc/PID/status (this process when `processIdentifier` is nil).
    static func statusField(_ name: String, processIdentifier: Int32?) -> Int? {
        let path = processIdentifier.map { "/proc/\($0)/status" } ?? "/proc/self/status"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.dropFirst(name.count + 1).split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "")
        }
        return nil
    }
}

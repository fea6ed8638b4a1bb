import EmberCore
import Foundation

/// A progress bar on standard error for long work (`pack`, `unpack`, `verify`, `bench`, `sim
/// --real-tokens`, `eval summarize`): one rewritten line on a terminal, nothing when standard error
/// is not a terminal (logs stay clean).
final class ProgressBar {
    private let label: String
    private let formatTotal: (Int) -> String
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastPermille = -1
    private var drawn = false

    /// `formatTotal` spells the total after "of" (bytes unless told, e.g. `{ "\($0) notes" }`).
    init(_ label: String, total formatTotal: @escaping (Int) -> String = ByteCount.format) {
        self.label = label
        self.formatTotal = formatTotal
    }

    /// Shows `done` of `total` (bytes unless the bar was made with another unit).
    func update(_ done: Int, _ total: Int) {
        guard isTerminal, total > 0 else { return }
        let permille = min(1000, done * 1000 / total)
        guard permille != lastPermille else { return }
        lastPermille = permille
        let width = 30
        let filled = permille * width / 1000
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        let line = "\r\u{1B}[K\(label) [\(bar)] \(permille / 10)% of \(formatTotal(total))"
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    /// Clears the bar's line.
    func finish() {
        guard drawn else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
        drawn = false
    }
}

/// Megabytes with one decimal, for summaries.
func megabytes(_ bytes: Int) -> String { String(format: "%.1f MB", Double(bytes) / 1e6) }

import ArgumentParser
import EmberCore
import Foundation

/// The files a command writes, checked before any work starts: every command that writes a file
/// goes through ``check(inputs:)`` and then writes with ``write(_:to:)`` (text) or an EmberStorage
/// writer (containers), both of which write a temporary file beside the target and rename it.
struct OutputFiles {
    /// (option, path) of each output the command was given.
    var targets: [(option: String, path: String)]
    var overwrite: Bool

    init(_ targets: [(option: String, path: String?)], overwrite: Bool) {
        self.targets = targets.compactMap { target in target.path.map { (target.option, $0) } }
        self.overwrite = overwrite
    }

    /// Refuses a target that is a device, directory, fifo or socket, one of `inputs`, another target
    /// of the same command, or an existing file without `--overwrite`: one line naming it.
    func check(inputs: [String]) throws {
        for (index, target) in targets.enumerated() {
            let others = targets[..<index].map(\.path)
            try OutputPolicy.check(target.path, option: target.option, inputs: inputs, overwrite: overwrite)
            if others.contains(where: { Self.sameFile($0, target.path) }) {
                throw ValidationError("\(target.option) \(target.path) is also another output of this command; give each its own file.")
            }
        }
    }

    /// Whether two paths name one file: the same text, or (both existing) the same device and inode.
    static func sameFile(_ first: String, _ second: String) -> Bool {
        if (first as NSString).standardizingPath == (second as NSString).standardizingPath { return true }
        var a = stat(), b = stat()
        return stat(first, &a) == 0 && stat(second, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino
    }
}

/// Writes `text` to `path` through a temporary file beside it, `fsync` and `rename` (the caller
/// has checked the target with ``OutputFiles/check(inputs:)``).
func write(_ text: String, to path: String) throws {
    try AtomicOutputFile.write(text, to: path)
}

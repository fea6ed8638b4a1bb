import ArgumentParser
import EmberLM
import EmberNotes
import Foundation

/// `ember notes stress-writer` (hidden): the writer the kill test kills.
///
/// Adds notes, and edits notes it added, with seeded random text as fast as it can. Before each write it prints an
/// `intent` line with the exact text, and after the commit an `ack` line; each line is written
/// with one unbuffered `write(2)`. A test that kills this process with SIGKILL at any moment can
/// then check that every acknowledged write is in the database exactly, and that an unacknowledged
/// one either is there whole or not at all.
struct NotesStressWriterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stress-writer",
        abstract: "Write random notes and print each intent and acknowledgement (for the kill test).",
        shouldDisplay: false)

    @ParentCommand var notes: NotesCommand

    @Option(help: "Seed for the random notes.")
    var seed: UInt64 = 1

    @Option(help: "Stop after this many writes (default: write until killed).")
    var count: Int = .max

    func run() throws {
        let store = try notes.openStore(creating: true)
        var random = SeededRandomSource(seed: seed)
        // Edits go only to notes this run added, so two writers at once never race on one note.
        var ids: [NoteID] = []
        emit("{\"event\":\"ready\"}")
        for _ in 0..<count {
            let title = Self.words(Int.random(in: 1...6, using: &random), using: &random)
            let body = Self.body(using: &random)
            if let id = ids.randomElement(using: &random), Int.random(in: 0..<4, using: &random) == 0 {
                emit("{\"event\":\"intent\",\"op\":\"edit\",\"id\":\(id),\"title\":\(JSONText.string(title)),\"body\":\(JSONText.string(body))}")
                _ = try store.edit(id, NoteChange(title: title, body: body))
                emit("{\"event\":\"ack\",\"op\":\"edit\",\"id\":\(id)}")
            } else {
                var tags: [String] = []
                for _ in 0..<Int.random(in: 0...2, using: &random) { tags.append(Self.word(using: &random)) }
                emit("{\"event\":\"intent\",\"op\":\"add\",\"title\":\(JSONText.string(title)),\"body\":\(JSONText.string(body)),"
                    + "\"tags\":[\(tags.map(JSONText.string).joined(separator: ","))]}")
                let note = try store.add(NoteDraft(title: title, body: body, tags: tags))
                ids.append(note.id)
                emit("{\"event\":\"ack\",\"op\":\"add\",\"id\":\(note.id)}")
            }
        }
    }

    /// One line on standard output in a single unbuffered write.
    private func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static let vocabulary = ["café", "résumé", "naïve", "garden", "meeting", "budget", "train", "Zürich", "crème",
                             "notes", "plan", "milk", "😀", "日本", "quarterly", "über", "piñata", "tea", "list", "idea"]

    static func word(using random: inout SeededRandomSource) -> String {
        vocabulary[Int.random(in: 0..<vocabulary.count, using: &random)]
    }

    static func words(_ count: Int, using random: inout SeededRandomSource) -> String {
        var words: [String] = []
        for _ in 0..<count { words.append(word(using: &random)) }
        return words.joined(separator: " ")
    }

    /// Mostly short bodies; one in seven spans several database pages (8–40 KB).
    static func body(using random: inout SeededRandomSource) -> String {
        let targetBytes = Int.random(in: 0..<7, using: &random) == 0
            ? Int.random(in: 8_000...40_000, using: &random)
            : Int.random(in: 1...1_500, using: &random)
        var text = ""
        while text.utf8.count < targetBytes {
            text += words(Int.random(in: 3...12, using: &random), using: &random)
            text += Int.random(in: 0..<5, using: &random) == 0 ? "\n\n- " : ". "
        }
        return text
    }
}

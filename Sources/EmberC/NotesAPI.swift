import CEmberABI
import Ember
import EmberNotes
import Foundation

/// A notes database behind an `ember_notes` handle.
final class NotesHandle: Sendable {
    let store: NotesStore
    init(store: NotesStore) { self.store = store }
}

/// The summary of a note as a request's events: one token event with the whole summary (the
/// summarizer writes it in parts), then `finished`, once it is stored with the note.
private func summaryEvents(store: NotesStore, engine: Engine, note: Note, modelName: String, turn: TurnOptions)
    -> (AsyncThrowingStream<RequestEvent, Error>, Task<Void, Never>) {
    let (stream, continuation) = AsyncThrowingStream.makeStream(of: RequestEvent.self)
        let task = Task {
            do {
                let start = MonotonicClock.nanoseconds()
                // The body this summary is made from: an edit while it runs leaves the summary stale.
                let bodySHA256 = NotesStore.bodySHA256(note.body)
                let result = try await engine.summarize(title: note.title, text: note.body, deadlineSeconds: turn.deadlineSeconds)
                try Task.checkCancellation()
                _ = try store.storeSummary(result.summary, model: modelName, for: note.id, bodySHA256: bodySHA256)
                continuation.yield(.token(id: -1, text: result.summary))
                let seconds = Double(MonotonicClock.nanoseconds() - start) / 1e9
                var statistics = ember_statistics()
                statistics.prompt_tokens = count32(result.promptTokens)
                statistics.evaluated_prompt_tokens = count32(result.promptTokens)
                statistics.generated_tokens = count32(result.generatedTokens)
                statistics.decode_tokens_per_second = seconds > 0 ? Double(result.generatedTokens) / seconds : 0
                statistics.peak_resident_bytes = UInt64(clamping: ProcessMemory.peakResidentBytes())
                continuation.yield(.finished(reason: .endOfGeneration, statistics: statistics))
                continuation.finish()
            } catch is CancellationError {
                continuation.finish(throwing: EngineError(.cancelled, "the summary was cancelled"))
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { termination in
            if case .cancelled = termination { task.cancel() }
        }
    return (stream, task)
}

// MARK: - exported

@_cdecl("ember_notes_default_params")
public func ember_notes_default_params() -> ember_notes_params {
    var params = ember_notes_params()
    params.struct_size = MemoryLayout<ember_notes_params>.size
    params.create_if_missing = 1
    return params
}

@_cdecl("ember_notes_open")
public func ember_notes_open(_ params: UnsafePointer<ember_notes_params>?, _ outNotes: UnsafeMutablePointer<OpaquePointer?>?) -> ember_status {
    call {
        let params = try readParams(params, "params")
        let path = try text(params.path, "path")
        guard let outNotes else { throw CallError.invalid("the out_notes pointer is NULL") }
        var configuration = NotesStore.Configuration()
        configuration.createIfMissing = params.create_if_missing != 0
        let store = try NotesStore(path: path, configuration: configuration)
        outNotes.pointee = HandleTable.shared.insert(NotesHandle(store: store))
    }
}

@_cdecl("ember_notes_add")
public func ember_notes_add(_ notes: OpaquePointer?, _ title: UnsafePointer<CChar>?, _ body: UnsafePointer<CChar>?,
                            _ tags: UnsafePointer<CChar>?, _ outNoteID: UnsafeMutablePointer<Int64>?) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(notes, NotesHandle.self, "notes")
        let title = try text(title, "title")
        let body = try text(body, "body")
        let tags = try optionalText(tags, "tags").map {
            $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        } ?? []
        guard let outNoteID else { throw CallError.invalid("the out_note_id pointer is NULL") }
        outNoteID.pointee = try handle.store.add(NoteDraft(title: title, body: body, tags: tags)).id.rawValue
    }
}

@_cdecl("ember_notes_search")
public func ember_notes_search(_ notes: OpaquePointer?, _ query: UnsafePointer<CChar>?, _ limit: UInt32,
                               _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(notes, NotesHandle.self, "notes")
        let query = try text(query, "query")
        guard (1...1000).contains(limit) else { throw CallError.invalid("limit must be 1 to 1000, not \(limit)") }
        guard let outJSON else { throw CallError.invalid("the out_json pointer is NULL") }
        let hits = try handle.store.search(query, limit: Int(limit))
        let objects = hits.map { hit in
            "{\"id\":\(hit.noteID.rawValue),\"title\":\(JSONString.quote(hit.title)),\"snippet\":\(JSONString.quote(hit.snippet)),\"score\":\(hit.score.isFinite ? hit.score : 0)}"
        }
        outJSON.pointee = try allocatedCString("[" + objects.joined(separator: ",") + "]")
    }
}

@_cdecl("ember_notes_get")
public func ember_notes_get(_ notes: OpaquePointer?, _ noteID: Int64, _ outJSON: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(notes, NotesHandle.self, "notes")
        guard let outJSON else { throw CallError.invalid("the out_json pointer is NULL") }
        let note = try handle.store.note(NoteID(noteID))
        let summary = try handle.store.summaries(of: note.id).last.map { JSONString.quote($0.text) } ?? "null"
        let tags = note.tags.map(JSONString.quote).joined(separator: ",")
        outJSON.pointee = try allocatedCString(
            "{\"id\":\(note.id.rawValue),\"title\":\(JSONString.quote(note.title)),\"body\":\(JSONString.quote(note.body)),\"tags\":[\(tags)],\"summary\":\(summary)}")
    }
}

@_cdecl("ember_notes_summarize")
public func ember_notes_summarize(_ notes: OpaquePointer?, _ engine: OpaquePointer?, _ noteID: Int64,
                                  _ params: UnsafePointer<ember_request_params>?,
                                  _ outRequest: UnsafeMutablePointer<OpaquePointer?>?) -> ember_status {
    call {
        let notesHandle = try HandleTable.shared.lookup(notes, NotesHandle.self, "notes")
        let engineHandle = try HandleTable.shared.lookup(engine, EngineHandle.self, "engine")
        let params = try readParams(params, "params")
        let turn = try turnOptions(params)
        guard let outRequest else { throw CallError.invalid("the out_request pointer is NULL") }
        let note = try notesHandle.store.note(NoteID(noteID))
        let modelName = URL(fileURLWithPath: engineHandle.engine.model.path).lastPathComponent
        let (events, task) = summaryEvents(store: notesHandle.store, engine: engineHandle.engine, note: note,
                                   modelName: modelName, turn: turn)
        let request = RequestHandle(params: params)
        register(request, outRequest)
        request.start(events, as: { $0 }) { task.cancel() }
    }
}

@_cdecl("ember_notes_close")
public func ember_notes_close(_ notes: OpaquePointer?) -> ember_status {
    call { _ = try HandleTable.shared.remove(notes, NotesHandle.self, "notes") }
}

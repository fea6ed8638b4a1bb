import CEmberABI
import Ember
import Foundation
import Synchronization

/// A chat behind an `ember_chat` handle.
final class ChatHandle: Sendable {
    let chat: ChatSession
    init(chat: ChatSession) { self.chat = chat }
}

/// A request behind an `ember_request` handle: it relays the events of one turn (or summary) to
/// the C callback on its own task, one at a time, and records the outcome for `ember_request_wait`.
///
/// `@unchecked Sendable`: `done`, `outcome`, `statistics`, `cancelRequested` and `deliveringThread`
/// are only touched with `condition` locked; `cancelTurn` is set once before the task starts.
final class RequestHandle: @unchecked Sendable {
    private let condition = NSCondition()
    private var done = false
    private var outcome = EMBER_STATUS_OK
    private var outcomeMessage = ""
    private var statistics = ember_statistics()
    private var cancelRequested = false
    /// The thread running the callback right now (a request's callback must not wait for it).
    private var deliveringThread: pthread_t?
    private let callback: ember_event_callback?
    private let userData: UnsafeMutableRawPointer?
    private var cancelTurn: @Sendable () -> Void = {}
    /// This request's handle, as events carry it.
    var handle: OpaquePointer?

    init(params: ember_request_params) {
        callback = params.on_event
        userData = params.user_data
    }

    /// Relays `events` (ending the request when they end); `cancel` stops the work behind them.
    func start<Element: Sendable>(_ events: AsyncThrowingStream<Element, Error>, as transform: @escaping @Sendable (Element) -> RequestEvent,
                                  cancel: @escaping @Sendable () -> Void) {
        cancelTurn = cancel
        Task.detached { [self] in
            do {
                var finished: ember_statistics?
                for try await element in events {
                    let event = transform(element)
                    if case .finished(_, let statistics) = event { finished = statistics }
                    deliver(event)
                }
                guard let finished else { throw EngineError(.cancelled, "the request was cancelled") }
                end(EMBER_STATUS_OK, finished, "")
            } catch {
                let (status, message) = statusAndMessage(error)
                deliverError(status, message)
                end(status, ember_statistics(), message)
            }
        }
    }

    private func deliver(_ event: RequestEvent) {
        guard let callback, !isCancelRequested else { return }
        var value = ember_event()
        value.struct_size = MemoryLayout<ember_event>.size
        value.request = handle
        switch event {
        case .promptProcessed(let tokens, let milliseconds):
            value.kind = EMBER_EVENT_PROMPT_DONE
            value.prompt_tokens = count32(tokens)
            value.prompt_duration_ns = nanoseconds(milliseconds / 1000)
            invoke(callback, &value)
        case .token(let id, let text):
            value.kind = EMBER_EVENT_TOKEN
            value.token_id = id
            var text = text
            text.withUTF8 { bytes in
                // Always NUL-terminated, even when empty.
                var copy = [CChar](repeating: 0, count: bytes.count + 1)
                for index in 0..<bytes.count { copy[index] = CChar(bitPattern: bytes[index]) }
                copy.withUnsafeBufferPointer { buffer in
                    value.text = buffer.baseAddress
                    value.text_length = bytes.count
                    invoke(callback, &value)
                }
            }
        case .paced(let seconds, let reason):
            value.kind = EMBER_EVENT_PACED
            value.paced_duration_ns = nanoseconds(seconds)
            value.pace_reason = switch reason {
            case .thermalPause: EMBER_PACE_THERMAL_PAUSE
            case .thermalDeferral: EMBER_PACE_THERMAL_DEFERRAL
            case .batteryDeferral: EMBER_PACE_BATTERY_DEFERRAL
            default: EMBER_PACE_READING_SPEED
            }
            invoke(callback, &value)
        case .finished(let reason, let statistics):
            value.kind = EMBER_EVENT_FINISHED
            value.stop_reason = switch reason {
            case .maxTokens: EMBER_STOP_MAX_TOKENS
            case .contextFull: EMBER_STOP_CONTEXT_FULL
            default: EMBER_STOP_END_OF_GENERATION
            }
            value.statistics = statistics
            invoke(callback, &value)
        }
    }

    private func deliverError(_ status: ember_status, _ message: String) {
        guard let callback else { return }
        var value = ember_event()
        value.struct_size = MemoryLayout<ember_event>.size
        value.request = handle
        value.kind = EMBER_EVENT_ERROR
        value.status = status
        message.withCString { text in
            value.message = text
            invoke(callback, &value, final: true)
        }
    }

    /// Calls the callback; a nonzero return cancels the request.
    private func invoke(_ callback: ember_event_callback, _ event: UnsafeMutablePointer<ember_event>, final: Bool = false) {
        condition.lock()
        deliveringThread = pthread_self()
        condition.unlock()
        let result = callback(event, userData)
        condition.lock()
        deliveringThread = nil
        condition.unlock()
        if result != 0, !final { cancel() }
    }

    private var isCancelRequested: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cancelRequested
    }

    private func end(_ status: ember_status, _ statistics: ember_statistics, _ message: String) {
        condition.lock()
        done = true
        outcome = status
        outcomeMessage = message
        self.statistics = statistics
        condition.broadcast()
        condition.unlock()
        Log.write(.debug, "request ended: \(statusName(status)), \(statistics.generated_tokens) tokens, \(Int(statistics.decode_tokens_per_second)) tokens/s")
    }

    func cancel() {
        condition.lock()
        let wasDone = done
        cancelRequested = true
        condition.unlock()
        if !wasDone { cancelTurn() }
    }

    /// Whether the calling thread is inside this request's callback.
    var isCallingBack: Bool {
        condition.lock()
        defer { condition.unlock() }
        guard let deliveringThread else { return false }
        return pthread_equal(deliveringThread, pthread_self()) != 0
    }

    /// Waits until the request ended or `timeout` nanoseconds passed (nil: forever); its outcome,
    /// or nil on timeout.
    func wait(nanoseconds timeout: UInt64?) -> (ember_status, ember_statistics, String)? {
        let deadline = timeout.map { Date(timeIntervalSinceNow: min(Double($0) / 1e9, 1e9)) }
        condition.lock()
        defer { condition.unlock() }
        while !done {
            if let deadline {
                if !condition.wait(until: deadline) && !done { return nil }
            } else {
                condition.wait()
            }
        }
        return (outcome, statistics, outcomeMessage)
    }
}

/// What a request reports: a chat turn's events, with its statistics as the C struct.
enum RequestEvent: Sendable {
    case promptProcessed(tokens: Int, milliseconds: Double)
    case token(id: Int32, text: String)
    case paced(seconds: Double, reason: IdleReason)
    case finished(reason: StopReason, statistics: ember_statistics)

    init(_ event: ChatEvent) {
        self = switch event {
        case .promptProcessed(let tokens, let milliseconds): .promptProcessed(tokens: tokens, milliseconds: milliseconds)
        case .token(let id, let text): .token(id: id, text: text)
        case .paced(let seconds, let reason): .paced(seconds: seconds, reason: reason)
        case .finished(let reason, let statistics): .finished(reason: reason, statistics: ember_statistics(statistics))
        }
    }
}

extension ember_statistics {
    init(_ statistics: GenerationStatistics) {
        self.init()
        prompt_tokens = count32(statistics.promptTokens)
        evaluated_prompt_tokens = count32(statistics.evaluatedPromptTokens)
        generated_tokens = count32(statistics.generatedTokens)
        time_to_first_token_ns = nanoseconds(statistics.timeToFirstTokenMilliseconds / 1000)
        prefill_tokens_per_second = statistics.prefillTokensPerSecond
        decode_tokens_per_second = statistics.decodeTokensPerSecond
        peak_resident_bytes = UInt64(clamping: statistics.peakResidentBytes)
    }
}

/// The turn options `params` describes.
func turnOptions(_ params: ember_request_params) throws(CallError) -> TurnOptions {
    switch params.request_class {
    case EMBER_REQUEST_INTERACTIVE:
        return TurnOptions(requestClass: .interactive, deadlineSeconds: params.deadline_ns == 0 ? nil : Double(params.deadline_ns) / 1e9)
    case EMBER_REQUEST_BACKGROUND:
        return TurnOptions(requestClass: .background, deadlineSeconds: params.deadline_ns == 0 ? nil : Double(params.deadline_ns) / 1e9)
    default:
        throw .invalid("request_class must be 0 (interactive) or 1 (background), not \(params.request_class.rawValue)")
    }
}

/// Registers `request` and writes its handle to `out`.
func register(_ request: RequestHandle, _ out: UnsafeMutablePointer<OpaquePointer?>) {
    let handle = HandleTable.shared.insert(request)
    request.handle = handle
    out.pointee = handle
}

// MARK: - exported

@_cdecl("ember_chat_default_params")
public func ember_chat_default_params() -> ember_chat_params {
    let options = ChatOptions()
    var params = ember_chat_params()
    params.struct_size = MemoryLayout<ember_chat_params>.size
    params.max_tokens = count32(options.maxTokens)
    params.temperature = options.sampling.temperature
    params.top_k = count32(options.sampling.topK)
    params.top_p = options.sampling.topP
    params.min_p = options.sampling.minP
    params.repetition_penalty = options.sampling.repetitionPenalty
    params.seed = options.sampling.seed
    params.reuses_cache = options.reusesCache ? 1 : 0
    return params
}

@_cdecl("ember_chat_create")
public func ember_chat_create(_ engine: OpaquePointer?, _ params: UnsafePointer<ember_chat_params>?,
                              _ outChat: UnsafeMutablePointer<OpaquePointer?>?) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(engine, EngineHandle.self, "engine")
        let params = try readChatParams(params)
        guard let outChat else { throw CallError.invalid("the out_chat pointer is NULL") }
        guard handle.engine.model.chatTemplate != nil else {
            throw CallError(EMBER_STATUS_UNSUPPORTED_MODEL, "\(handle.engine.model.path) has no chat template Ember recognises; it cannot hold a chat")
        }
        guard params.max_tokens >= 1 else { throw CallError.invalid("max_tokens must be at least 1") }
        var sampling = SamplingParameters()
        sampling.temperature = params.temperature
        sampling.topK = Int(params.top_k)
        sampling.topP = params.top_p
        sampling.minP = params.min_p
        sampling.repetitionPenalty = params.repetition_penalty
        sampling.seed = params.seed
        do {
            try sampling.validate()
        } catch {
            throw CallError.invalid("\(error)")
        }
        var options = ChatOptions(maxTokens: Int(params.max_tokens), sampling: sampling, reusesCache: params.reuses_cache != 0)
        if let schema = try optionalText(params.json_schema, "json_schema") {
            do { _ = try Grammar(.jsonSchema(schema)) } catch { throw CallError.invalid("\(error)") }
            options.outputFormat = .jsonSchema(schema)
        }
        let chat = handle.engine.chat(instructions: try optionalText(params.instructions, "instructions"), options: options)
        outChat.pointee = HandleTable.shared.insert(ChatHandle(chat: chat))
    }
}

/// `readParams` for `ember_chat_params`, also accepting the first version's size (before
/// `json_schema`): its fields are read and `json_schema` stays NULL.
private func readChatParams(_ pointer: UnsafePointer<ember_chat_params>?) throws(CallError) -> ember_chat_params {
    guard let pointer else { throw .invalid("the params pointer is NULL") }
    let declared = UnsafeRawPointer(pointer).loadUnaligned(as: Int.self)
    let firstVersion = MemoryLayout<ember_chat_params>.offset(of: \ember_chat_params.json_schema) ?? 0
    guard declared == firstVersion else { return try readParams(pointer, "params") }
    var params = ember_chat_default_params()
    withUnsafeMutableBytes(of: &params) { copy in
        copy.copyMemory(from: UnsafeRawBufferPointer(start: UnsafeRawPointer(pointer), count: firstVersion))
    }
    params.json_schema = nil
    return params
}

@_cdecl("ember_chat_destroy")
public func ember_chat_destroy(_ chat: OpaquePointer?) -> ember_status {
    call { _ = try HandleTable.shared.remove(chat, ChatHandle.self, "chat") }
}

@_cdecl("ember_request_default_params")
public func ember_request_default_params() -> ember_request_params {
    var params = ember_request_params()
    params.struct_size = MemoryLayout<ember_request_params>.size
    params.request_class = EMBER_REQUEST_INTERACTIVE
    return params
}

@_cdecl("ember_chat_send")
public func ember_chat_send(_ chat: OpaquePointer?, _ message: UnsafePointer<CChar>?, _ params: UnsafePointer<ember_request_params>?,
                            _ outRequest: UnsafeMutablePointer<OpaquePointer?>?) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(chat, ChatHandle.self, "chat")
        let message = try text(message, "message")
        let params = try readParams(params, "params")
        let turn = try turnOptions(params)
        guard let outRequest else { throw CallError.invalid("the out_request pointer is NULL") }
        let started = try handle.chat.startTurn(to: message, turn: turn)
        let request = RequestHandle(params: params)
        register(request, outRequest)
        request.start(started.events, as: RequestEvent.init) { started.cancel() }
    }
}

@_cdecl("ember_request_cancel")
public func ember_request_cancel(_ request: OpaquePointer?) -> ember_status {
    call { try HandleTable.shared.lookup(request, RequestHandle.self, "request").cancel() }
}

@_cdecl("ember_request_wait")
public func ember_request_wait(_ request: OpaquePointer?, _ timeoutNanoseconds: UInt64,
                               _ outStatistics: UnsafeMutablePointer<ember_statistics>?) -> ember_status {
    let handle: RequestHandle
    do {
        handle = try HandleTable.shared.lookup(request, RequestHandle.self, "request")
    } catch {
        return failure(error)
    }
    if handle.isCallingBack {
        return failure(EMBER_STATUS_INVALID_ARGUMENT, "ember_request_wait was called from the request's own callback, which would wait for itself")
    }
    guard let (status, statistics, message) = handle.wait(nanoseconds: timeoutNanoseconds == .max ? nil : timeoutNanoseconds) else {
        return failure(EMBER_STATUS_TIMEOUT, "the request is still running after \(Double(timeoutNanoseconds) / 1e9) s")
    }
    if status != EMBER_STATUS_OK {
        return failure(status, message)
    }
    outStatistics?.pointee = statistics
    return EMBER_STATUS_OK
}

@_cdecl("ember_request_release")
public func ember_request_release(_ request: OpaquePointer?) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(request, RequestHandle.self, "request")
        if handle.isCallingBack {
            throw CallError.invalid("ember_request_release was called from the request's own callback; release it after ember_request_wait")
        }
        _ = try HandleTable.shared.remove(request, RequestHandle.self, "request")
        handle.cancel()
        _ = handle.wait(nanoseconds: nil)
    }
}

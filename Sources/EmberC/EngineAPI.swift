import CEmberABI
import Ember
import Foundation
import Synchronization

/// An open engine behind an `ember_engine` handle: the engine, the relay of its hints to the C
/// callback and the thread ids sent with them.
final class EngineHandle: Sendable {
    let engine: Engine
    let hints: HintRelay
    private let hintTask: Task<Void, Never>

    init(engine: Engine, threadIDs: [Int32]) {
        self.engine = engine
        let hints = HintRelay(threadIDs: threadIDs)
        self.hints = hints
        let stream = engine.hints  // the stream alone: the task must not keep the engine alive
        hintTask = Task.detached {
            for await hint in stream { hints.deliver(hint) }
        }
    }

    /// Stops relaying hints (the engine lives on while chats use it).
    func close() {
        hints.set(nil, userData: nil)
        hintTask.cancel()
    }
}

/// Passes an engine's performance hints to the C callback, one at a time.
final class HintRelay: Sendable {
    /// `@unchecked Sendable`: a C function pointer and the caller's context, called with the lock held.
    private struct Sink: @unchecked Sendable {
        var callback: ember_hint_callback
        var userData: UnsafeMutableRawPointer?
    }

    let threadIDs: [Int32]
    private let sink = Mutex<Sink?>(nil)

    init(threadIDs: [Int32]) { self.threadIDs = threadIDs }

    /// Replaces the callback; once this returns the previous one is not called again (calls run with the lock held).
    func set(_ callback: ember_hint_callback?, userData: UnsafeMutableRawPointer?) {
        sink.withLock { $0 = callback.map { Sink(callback: $0, userData: userData) } }
    }

    func deliver(_ hint: PerformanceHint) {
        sink.withLock { sink in
            guard let sink else { return }
            threadIDs.withUnsafeBufferPointer { ids in
                var value = ember_hint()
                value.struct_size = MemoryLayout<ember_hint>.size
                switch hint {
                case .none: value.kind = EMBER_HINT_NONE
                case .boost: value.kind = EMBER_HINT_BOOST
                case .target(let seconds):
                    value.kind = EMBER_HINT_TARGET_DURATION
                    value.target_duration_ns = nanoseconds(seconds)
                }
                value.thread_ids = ids.baseAddress
                value.thread_count = ids.count
                sink.callback(&value, sink.userData)
            }
        }
    }
}

/// Linux thread ids of the process's threads, from /proc/self/task (Linux and Android); empty
/// elsewhere. The threads an engine starts are those that appear while it opens (Foundation does
/// not pass thread names to the OS on Linux, so they cannot be told apart by name).
func processThreadIDs() -> Set<Int32> {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return [] }
    return Set(tasks.compactMap { Int32($0) })
}

/// Opens are serialized so the threads that appear during one belong to it.
private let openLock = Mutex(())

extension EngineConfiguration {
    /// The configuration `params` describes.
    init(_ params: ember_engine_params) throws(CallError) {
        let model: ModelSource
        if let path = try optionalText(params.model_path, "model_path") {
            guard params.model_fd < 0 else { throw .invalid("give model_path or model_fd, not both (model_fd is \(params.model_fd))") }
            guard FileManager.default.fileExists(atPath: path) else {
                throw CallError(EMBER_STATUS_NOT_FOUND, "no model file at \(path)")
            }
            model = .file(path: path)
        } else {
            guard params.model_fd >= 0 else { throw .invalid("give model_path or an open model_fd (model_path is NULL and model_fd is \(params.model_fd))") }
            var status = stat()
            guard fstat(params.model_fd, &status) == 0 else {
                throw CallError(EMBER_STATUS_IO, "model_fd \(params.model_fd) is not an open file: \(String(cString: strerror(errno)))")
            }
            model = .fileDescriptor(params.model_fd, name: try optionalText(params.model_name, "model_name") ?? "")
        }
        guard let budget = Int(exactly: params.memory_budget_bytes) else {
            throw .invalid("memory_budget_bytes \(params.memory_budget_bytes) is out of range")
        }
        let keyValueType: KeyValueType? = switch params.kv_type {
        case EMBER_KV_AUTO: nil
        case EMBER_KV_F16: .f16
        case EMBER_KV_Q8_0: .q8_0
        case EMBER_KV_Q4_0: .q4_0
        default: throw .invalid("kv_type must be 0 (auto) to 3 (q4_0), not \(params.kv_type.rawValue)")
        }
        let streaming: WeightStreaming = switch params.weight_streaming {
        case EMBER_WEIGHTS_RESIDENT: .never
        case EMBER_WEIGHTS_STREAM_IF_NEEDED: .allowed
        case EMBER_WEIGHTS_STREAM_ALWAYS: .always
        default: throw .invalid("weight_streaming must be 0 to 2, not \(params.weight_streaming.rawValue)")
        }
        self.init(model: model, memoryBudgetBytes: budget == 0 ? nil : budget, contextLength: Int(params.context_length),
                  adjustsContext: params.adjusts_context != 0, threadCount: params.thread_count == 0 ? nil : Int(params.thread_count),
                  keyValueType: keyValueType, weightStreaming: streaming, batchSize: Int(params.batch_size),
                  pacesTokens: params.paces_tokens != 0, prefillChunk: Int(params.prefill_chunk))
    }
}

extension ember_memory_plan {
    mutating func fill(_ plan: MemoryPlan) {
        weights_bytes = UInt64(clamping: plan.weightsBytes)
        kv_cache_bytes = UInt64(clamping: plan.keyValueCacheBytes)
        scratch_bytes = UInt64(clamping: plan.scratchBytes)
        overhead_bytes = UInt64(clamping: plan.overheadBytes)
        total_bytes = UInt64(clamping: plan.totalBytes)
        context_length = count32(plan.context)
        batch_size = count32(plan.batchSize)
        kv_type = switch plan.keyValueType {
        case .q8_0: EMBER_KV_Q8_0
        case .q4_0: EMBER_KV_Q4_0
        default: EMBER_KV_F16
        }
        streams_weights = plan.streamWeights ? 1 : 0
    }
}

// MARK: - exported

@_cdecl("ember_engine_default_params")
public func ember_engine_default_params() -> ember_engine_params {
    let defaults = EngineConfiguration(model: .file(path: ""))
    var params = ember_engine_params()
    params.struct_size = MemoryLayout<ember_engine_params>.size
    params.model_fd = -1
    params.context_length = count32(defaults.contextLength)
    params.adjusts_context = defaults.adjustsContext ? 1 : 0
    params.batch_size = count32(defaults.batchSize)
    params.prefill_chunk = count32(defaults.prefillChunk)
    params.paces_tokens = defaults.pacesTokens ? 1 : 0
    return params
}

@_cdecl("ember_plan")
public func ember_plan(_ params: UnsafePointer<ember_engine_params>?, _ outPlan: UnsafeMutablePointer<ember_memory_plan>?) -> ember_status {
    call {
        let configuration = try EngineConfiguration(readParams(params, "params"))
        let output = try checkOutput(outPlan, "out_plan")
        let plan = try Engine.plan(configuration)
        output.pointee.fill(plan)
    }
}

@_cdecl("ember_engine_open")
public func ember_engine_open(_ params: UnsafePointer<ember_engine_params>?, _ outEngine: UnsafeMutablePointer<OpaquePointer?>?) -> ember_status {
    call {
        let configuration = try EngineConfiguration(readParams(params, "params"))
        guard let outEngine else { throw CallError.invalid("the out_engine pointer is NULL") }
        let (engine, threads) = try openLock.withLock { _ throws(EngineError) -> (Engine, [Int32]) in
            let before = processThreadIDs()
            let engine = try Engine(configuration)
            return (engine, processThreadIDs().subtracting(before).sorted())
        }
        let plan = engine.plan
        Log.write(.info, "opened \(engine.model.path): context \(engine.contextLength), KV \(plan.keyValueType), \(plan.totalBytes >> 20) MiB planned, \(configuration.resolvedThreadCount) threads")
        outEngine.pointee = HandleTable.shared.insert(EngineHandle(engine: engine, threadIDs: threads))
    }
}

@_cdecl("ember_engine_get_plan")
public func ember_engine_get_plan(_ engine: OpaquePointer?, _ outPlan: UnsafeMutablePointer<ember_memory_plan>?) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(engine, EngineHandle.self, "engine")
        try checkOutput(outPlan, "out_plan").pointee.fill(handle.engine.plan)
    }
}

@_cdecl("ember_engine_close")
public func ember_engine_close(_ engine: OpaquePointer?) -> ember_status {
    call {
        try HandleTable.shared.remove(engine, EngineHandle.self, "engine").close()
    }
}

@_cdecl("ember_platform_default_state")
public func ember_platform_default_state() -> ember_platform_state {
    var state = ember_platform_state()
    state.struct_size = MemoryLayout<ember_platform_state>.size
    state.thermal_status = 0
    state.thermal_headroom = .nan
    state.thermal_headroom_forecast = .nan
    state.battery_percent = .nan
    state.is_charging = 1
    state.is_power_save_mode = 0
    state.is_foreground = 1
    return state
}

@_cdecl("ember_thermal_status_from_ios")
public func ember_thermal_status_from_ios(_ iosThermalState: Int32) -> Int32 {
    Int32(PlatformState.thermalStatus(iOSThermalState: Int(iosThermalState)).rawValue)
}

@_cdecl("ember_engine_update_platform")
public func ember_engine_update_platform(_ engine: OpaquePointer?, _ state: UnsafePointer<ember_platform_state>?) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(engine, EngineHandle.self, "engine")
        let state = try readParams(state, "state")
        guard (0...6).contains(state.thermal_status) else {
            throw CallError.invalid("thermal_status must be an Android THERMAL_STATUS_* value, 0 to 6, not \(state.thermal_status)")
        }
        func reading(_ value: Double, _ name: String, _ range: ClosedRange<Double>) throws(CallError) -> Double? {
            if value.isNaN { return nil }
            guard range.contains(value) else { throw .invalid("\(name) must be within \(range.lowerBound)…\(range.upperBound) or NaN (unknown), not \(value)") }
            return value
        }
        let platform = PlatformState(
            thermalStatus: PlatformState.thermalStatus(androidThermalStatus: Int(state.thermal_status)),
            thermalHeadroom: try reading(state.thermal_headroom, "thermal_headroom", 0...10),
            thermalHeadroomForecast: try reading(state.thermal_headroom_forecast, "thermal_headroom_forecast", 0...10),
            batteryPercent: try reading(state.battery_percent, "battery_percent", 0...100),
            isCharging: state.is_charging != 0, isLowPowerMode: state.is_power_save_mode != 0,
            isForeground: state.is_foreground != 0)
        handle.engine.update(platform)
    }
}

@_cdecl("ember_engine_memory_pressure")
public func ember_engine_memory_pressure(_ engine: OpaquePointer?, _ level: ember_memory_pressure) -> ember_status {
    call {
        let handle = try HandleTable.shared.lookup(engine, EngineHandle.self, "engine")
        guard let pressure = MemoryPressure(rawValue: Int(level.rawValue)) else {
            throw CallError.invalid("the memory pressure level must be 0 (none) to 2 (critical), not \(level.rawValue)")
        }
        handle.engine.memoryWarning(pressure)
    }
}

@_cdecl("ember_engine_set_hint_callback")
public func ember_engine_set_hint_callback(_ engine: OpaquePointer?, _ callback: ember_hint_callback?,
                                           _ userData: UnsafeMutableRawPointer?) -> ember_status {
    call {
        try HandleTable.shared.lookup(engine, EngineHandle.self, "engine").hints.set(callback, userData: userData)
    }
}

import EmberCore
import EmberGGUF
import Foundation

/// One fuzz execution: the `ember` arguments to run in-process, the bytes to give it as standard
/// input, and the files it names (already written to the case's directory).
struct FuzzCase: Sendable {
    var kind: String
    var arguments: [String]
    var standardInput: [UInt8] = []
}

/// The valid inputs every mutation starts from, loaded once per worker.
struct FuzzInputs {
    /// A GGUF file taken apart: metadata in file order and each tensor with its bytes.
    struct Model {
        var name: String
        var metadata: [(key: String, value: GGUFValue)]
        var tensors: [(name: String, dimensions: [Int], type: TensorType, data: [UInt8])]
    }

    var models: [Model]
    /// A container packed from the first model (`ember pack`), to damage.
    var containerBytes: [UInt8]
    /// The shipped device profiles as JSON text.
    var profiles: [String]

    static let modelNames = ["qwen3-q8_0", "phi3-q8_0", "gemma4-q8_0", "ministral-q8_0", "mistral3moe-q8_0", "gemma3n-q8_0", "qwen3moe-q8_0"]

    static func load(fixtures: String, profilesDirectory: String) throws -> FuzzInputs {
        var models: [Model] = []
        for name in modelNames {
            let path = "\(fixtures)/\(name).gguf"
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let file = try GGUFFile(path: path)
            let metadata = file.metadataKeys.compactMap { key in file.metadata[key].map { (key: key, value: $0) } }
            let tensors = file.tensors.map { tensor in
                (name: tensor.name, dimensions: tensor.dimensions, type: tensor.type,
                 data: file.withTensorBytes(tensor) { Array($0) })
            }
            models.append(Model(name: name, metadata: metadata, tensors: tensors))
        }
        guard !models.isEmpty else {
            throw FuzzError("no tiny models in \(fixtures) (run scripts/tiny_models/write_fixtures.sh)")
        }
        let profileNames = try FileManager.default.contentsOfDirectory(atPath: profilesDirectory).filter { $0.hasSuffix(".json") }.sorted()
        let profiles = try profileNames.map { try String(contentsOfFile: "\(profilesDirectory)/\($0)", encoding: .utf8) }
        return FuzzInputs(models: models, containerBytes: [], profiles: profiles)
    }
}

/// Makes case `index` of a seed: which input to damage, how, and which command reads it.
struct FuzzCaseMaker {
    let inputs: FuzzInputs
    /// Where the case's files go; emptied by the worker before each case.
    let directory: String

    func make(seed: UInt64, index: Int) throws -> FuzzCase {
        var random = FuzzRandom(seed: seed, index: index)
        let roll = random.integer(0...99)
        switch roll {
        case 0..<38: return try ggufMetadataCase(&random)
        case 38..<48: return try ggufBytesCase(&random)
        case 48..<58: return try containerCase(&random)
        case 58..<66: return try profileCase(&random)
        case 66..<76: return try scenarioCase(&random)
        default: return try argumentCase(&random)
        }
    }

    // MARK: GGUF metadata, changed in meaning rather than in bytes

    private func ggufMetadataCase(_ random: inout FuzzRandom) throws -> FuzzCase {
        var model = random.pick(inputs.models)
        for _ in 0..<random.integer(1...3) { mutateModel(&model, &random) }
        let path = try writeModel(model, &random)
        return FuzzCase(kind: "gguf-metadata", arguments: modelCommand(path: path, &random),
                        standardInput: Array(randomText(&random).utf8))
    }

    private func ggufBytesCase(_ random: inout FuzzRandom) throws -> FuzzCase {
        let model = random.pick(inputs.models)
        var bytes = serialize(model)
        let headerEnd = min(bytes.count, headerByteCount(model))
        for _ in 0..<random.integer(1...8) {
            let offset = random.integer(0...max(0, headerEnd - 1))
            switch random.integer(0...3) {
            case 0: bytes[offset] ^= UInt8(1 << random.integer(0...7))
            case 1: bytes[offset] = random.pick([0x00, 0xFF, 0x7F, 0x80])
            case 2:
                // A whole little-endian word set to an edge value (a count or a length).
                let value = UInt64(truncatingIfNeeded: random.pick(BoundaryValues.integers(near: 0)))
                for byte in 0..<8 where offset + byte < bytes.count { bytes[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
            default:
                bytes.removeLast(random.integer(0...min(bytes.count, 4_096)))
            }
        }
        let path = "\(directory)/model.gguf"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return FuzzCase(kind: "gguf-bytes", arguments: modelCommand(path: path, &random),
                        standardInput: Array(randomText(&random).utf8))
    }

    private func mutateModel(_ model: inout FuzzInputs.Model, _ random: inout FuzzRandom) {
        let architecture = model.metadata.first { $0.key == "general.architecture" }.flatMap {
            if case .string(let name) = $0.value { return name } else { return nil }
        } ?? "llama"
        switch random.integer(0...9) {
        case 0...3:
            // A number the model is sized from: an edge value, in its own or another integer type.
            let candidates = model.metadata.indices.filter { model.metadata[$0].value.integerValue != nil }
            guard let index = candidates.isEmpty ? nil : random.pick(candidates) else { return }
            let original = model.metadata[index].value.integerValue ?? 0
            let value = random.pick(BoundaryValues.integers(near: original))
            model.metadata[index].value = random.pick([
                GGUFValue.uint32(UInt32(truncatingIfNeeded: value)), .int32(Int32(truncatingIfNeeded: value)),
                .uint64(UInt64(truncatingIfNeeded: value)), .int64(Int64(value)), .float32(Float(value)), .string(String(value)),
            ])
        case 4:
            let candidates = model.metadata.indices.filter {
                if case .float32 = model.metadata[$0].value { return true }
                if case .float64 = model.metadata[$0].value { return true }
                return false
            }
            guard let index = candidates.isEmpty ? nil : random.pick(candidates) else { return }
            let original = Double(model.metadata[index].value.floatValue ?? 1)
            model.metadata[index].value = .float32(Float(random.pick(BoundaryValues.floats(near: original))))
        case 5:
            // An array the model indexes: shorter, longer, empty, or of another element type.
            let candidates = model.metadata.indices.filter { if case .array = model.metadata[$0].value { return true } else { return false } }
            guard let index = candidates.isEmpty ? nil : random.pick(candidates),
                  case .array(let array) = model.metadata[index].value else { return }
            model.metadata[index].value = .array(mutateArray(array, &random))
        case 6:
            if !model.metadata.isEmpty { model.metadata.remove(at: random.integer(0...model.metadata.count - 1)) }
        case 7:
            // A key the architecture may read, added or replaced with an odd value.
            let suffix = random.pick(["block_count", "embedding_length", "feed_forward_length", "attention.head_count",
                                      "attention.head_count_kv", "attention.key_length", "attention.value_length",
                                      "context_length", "expert_count", "expert_used_count", "attention.sliding_window",
                                      "rope.dimension_count", "rope.freq_base", "rope.scaling.type", "rope.scaling.factor",
                                      "attention.layer_norm_rms_epsilon", "vocab_size", "final_logit_softcapping"])
            let key = random.chance(0.8) ? "\(architecture).\(suffix)" : random.pick(["general.architecture", "tokenizer.ggml.model",
                "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "general.alignment", "tokenizer.chat_template"])
            let value: GGUFValue = random.pick([
                .uint32(UInt32(truncatingIfNeeded: random.pick(BoundaryValues.integers(near: 64)))),
                .float32(Float(random.pick(BoundaryValues.floats(near: 1)))),
                .string(random.pick(["llama", "gemma3", "qwen3", "phi3", "gemma4", "gemma3n", "mistral3", "nonesuch", "", "LLAMA", "gpt2", "yarn", "longrope", "{{ x }}"])),
                .array(.int32([1, -1, Int32.max])), .bool(true),
            ])
            if let index = model.metadata.firstIndex(where: { $0.key == key }) { model.metadata[index].value = value }
            else { model.metadata.append((key, value)) }
        case 8:
            // A tensor dropped, renamed, or given another shape (its bytes resized to match).
            guard !model.tensors.isEmpty else { return }
            let index = random.integer(0...model.tensors.count - 1)
            switch random.integer(0...3) {
            case 0: model.tensors.remove(at: index)
            case 1: model.tensors[index].name = random.chance(0.5) ? model.tensors[random.integer(0...model.tensors.count - 1)].name : model.tensors[index].name + ".x"
            case 2:
                var dimensions = model.tensors[index].dimensions
                let axis = random.integer(0...dimensions.count - 1)
                dimensions[axis] = random.pick([1, 2, dimensions[axis] * 2, max(1, dimensions[axis] / 2), dimensions[axis] + 32])
                if random.chance(0.2) { dimensions.append(2) }
                resize(&model.tensors[index], dimensions: dimensions, type: model.tensors[index].type)
            default:
                let type = random.pick([TensorType.f32, .f16, .q8_0, .q4_0, .q4_1, .q5_0, .q4_K, .q6_K, .bf16, .i32])
                resize(&model.tensors[index], dimensions: model.tensors[index].dimensions, type: type)
            }
        default:
            // Metadata and tensors of two different models in one file.
            let other = random.pick(inputs.models)
            if random.chance(0.5) { model.metadata = other.metadata } else { model.tensors = other.tensors }
        }
    }

    private func mutateArray(_ array: GGUFArray, _ random: inout FuzzRandom) -> GGUFArray {
        func reshape<T>(_ values: [T], filler: T) -> [T] {
            switch random.integer(0...3) {
            case 0: return []
            case 1: return Array(values.prefix(random.integer(0...values.count)))
            case 2: return values + Array(repeating: filler, count: random.integer(1...64))
            default: return values.isEmpty ? [filler] : values.enumerated().map { $0.offset == random.integer(0...values.count - 1) ? filler : $0.element }
            }
        }
        switch array {
        case .string(let values): return random.chance(0.2) ? .int32(values.map { _ in -1 }) : .string(reshape(values, filler: random.pick(["", "<s>", "</s>", "\u{FFFD}", "a b", "Ġ", "<0xZZ>"])))
        case .float32(let values): return .float32(reshape(values, filler: Float(random.pick(BoundaryValues.floats(near: 0)))))
        case .int32(let values): return .int32(reshape(values, filler: Int32(truncatingIfNeeded: random.pick(BoundaryValues.integers(near: 0)))))
        case .uint32(let values): return .uint32(reshape(values, filler: UInt32(truncatingIfNeeded: random.pick(BoundaryValues.integers(near: 0)))))
        case .bool(let values): return .bool(reshape(values, filler: true))
        default: return random.chance(0.5) ? .string([]) : array
        }
    }

    private func resize(_ tensor: inout (name: String, dimensions: [Int], type: TensorType, data: [UInt8]), dimensions: [Int], type: TensorType) {
        let elements = dimensions.reduce(1, *)
        guard elements > 0, elements % type.blockSize == 0, let bytes = type.byteCount(elements: elements), bytes <= 64 << 20 else { return }
        var data = Array(tensor.data.prefix(bytes))
        if data.count < bytes { data += [UInt8](repeating: 0x3C, count: bytes - data.count) }
        tensor = (tensor.name, dimensions, type, data)
    }

    private func serialize(_ model: FuzzInputs.Model) -> [UInt8] {
        var writer = GGUFWriter()
        for entry in model.metadata where entry.key != "general.alignment" { writer.set(entry.key, entry.value) }
        for tensor in model.tensors { writer.addTensor(name: tensor.name, dimensions: tensor.dimensions, type: tensor.type, data: tensor.data) }
        return writer.serialized()
    }

    /// Bytes before the tensor data, where a flipped byte changes the file's structure.
    private func headerByteCount(_ model: FuzzInputs.Model) -> Int {
        var withoutData = model
        withoutData.tensors = []
        return serialize(withoutData).count + model.tensors.count * 96
    }

    private func writeModel(_ model: FuzzInputs.Model, _ random: inout FuzzRandom) throws -> String {
        let path = "\(directory)/model.gguf"
        try Data(serialize(model)).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A command that reads a model file: plan, tokenize, generate, logits or perplexity, at sizes
    /// that keep one execution to milliseconds.
    private func modelCommand(path: String, _ random: inout FuzzRandom) -> [String] {
        switch random.integer(0...9) {
        case 0...2:
            var arguments = ["plan", "--model", path, "--json"]
            if random.chance(0.5) { arguments += ["--memory-budget", random.pick(["1MiB", "8MiB", "64MiB", "1GiB", "1TiB"])] }
            if random.chance(0.5) { arguments += ["--context", random.pick(["1", "64", "4096", "1000000", "9223372036854775807"])] }
            if random.chance(0.3) { arguments += ["--stream-weights"] }
            if random.chance(0.3) { arguments += ["--kv-type", random.pick(["f16", "q8_0", "q4_0"])] }
            return arguments
        case 3...4:
            return ["tokenize", "--model", path] + (random.chance(0.5) ? ["--parse-special"] : [])
        case 5...7:
            var arguments = ["generate", "--model", path, "--prompt", randomText(&random), "--max-tokens", random.pick(["1", "3", "8"]),
                             "--threads", "1", "--context", random.pick(["16", "64", "128"])]
            if random.chance(0.5) { arguments += ["--temperature", "0"] }
            if random.chance(0.3) { arguments += ["--json"] }
            if random.chance(0.2) { arguments += ["--memory-budget", random.pick(["4MiB", "32MiB"])] }
            if random.chance(0.2) { arguments += ["--stream-weights"] }
            return arguments
        case 8:
            return ["logits", "--model", path, "--ids", random.pick(["1,2,3", "0", "5,5,5,5", "271", "100000", "-1"]), "--top", "3", "--threads", "1"]
        default:
            let text = "\(directory)/text.txt"
            try? Data(String(repeating: "the quick brown fox jumps. ", count: random.integer(1...20)).utf8).write(to: URL(fileURLWithPath: text))
            return ["perplexity", "--model", path, "--file", text, "--context", random.pick(["8", "16", "32"]), "--threads", "1", "--json"]
        }
    }

    private func randomText(_ random: inout FuzzRandom) -> String {
        let pieces = ["hello", " world", "<s>", "</s>", "<unk>", "<|im_start|>", "<bos>", "<start_of_turn>", "\n", "\n\n", "  ", "é", "🙂",
                      "12345", "\u{FFFD}", "<0x41>", "▁", "Ġ", "\t", "日本語", "'s", "...", "\u{200B}"]
        return (0..<random.integer(0...12)).map { _ in random.pick(pieces) }.joined()
    }

    // MARK: Containers

    private func containerCase(_ random: inout FuzzRandom) throws -> FuzzCase {
        var bytes = inputs.containerBytes
        if !bytes.isEmpty {
            for _ in 0..<random.integer(1...6) {
                // Most structure sits in the header, the index frame and the seek table at the end.
                let region = random.integer(0...2)
                let offset: Int
                switch region {
                case 0: offset = random.integer(0...min(bytes.count - 1, 4_095))
                case 1: offset = random.integer(max(0, bytes.count - 4_096)...bytes.count - 1)
                default: offset = random.integer(0...bytes.count - 1)
                }
                switch random.integer(0...3) {
                case 0: bytes[offset] ^= UInt8(1 << random.integer(0...7))
                case 1: bytes[offset] = random.pick([0, 0xFF])
                case 2:
                    let value = UInt64(truncatingIfNeeded: random.pick(BoundaryValues.integers(near: 0)))
                    for byte in 0..<8 where offset + byte < bytes.count { bytes[offset + byte] = UInt8(truncatingIfNeeded: value >> (8 * byte)) }
                default: bytes.removeLast(random.integer(1...min(bytes.count, 8_192)))
                }
            }
        }
        let path = "\(directory)/model.ggz"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let arguments: [String]
        switch random.integer(0...4) {
        case 0: arguments = ["inspect", path, "--json"]
        case 1: arguments = ["verify", path, "--json", "--threads", "1"]
        case 2: arguments = ["unpack", path, "--output", "\(directory)/unpacked.gguf", "--threads", "1"]
        case 3: arguments = ["generate", "--model", path, "--prompt", "hi", "--max-tokens", "2", "--threads", "1", "--context", "32"]
        default: arguments = ["inspect", path, "--tensors"]
        }
        return FuzzCase(kind: "container", arguments: arguments)
    }

    // MARK: Profiles and scenarios

    private func profileCase(_ random: inout FuzzRandom) throws -> FuzzCase {
        let text = try mutateJSON(random.pick(inputs.profiles), &random)
        let profile = "\(directory)/profile.json"
        try Data(text.utf8).write(to: URL(fileURLWithPath: profile))
        let scenario = "\(directory)/scenario.json"
        try Data(makeScenario(&random).text.utf8).write(to: URL(fileURLWithPath: scenario))
        return FuzzCase(kind: "profile", arguments: simulation(profile: profile, scenario: scenario, &random))
    }

    private func scenarioCase(_ random: inout FuzzRandom) throws -> FuzzCase {
        var text = makeScenario(&random).text
        if random.chance(0.7) { text = try mutateJSON(text, &random) }
        let scenario = "\(directory)/scenario.json"
        try Data(text.utf8).write(to: URL(fileURLWithPath: scenario))
        let profile = random.pick(["flagship-android", "iphone-pro", "low-end-android", "tablet"])
        return FuzzCase(kind: "scenario", arguments: simulation(profile: profile, scenario: scenario, &random))
    }

    private func simulation(profile: String, scenario: String, _ random: inout FuzzRandom) -> [String] {
        var arguments = ["sim", "run", "--profile", profile, "--scenario", scenario, "--cost-model", "--json",
                         "--policy", random.pick(["race", "adaptive"]), "--model-spec", random.pick(["smollm2-135m-q4_1", "gemma3-270m-q4_k_m", "qwen3-4b-q4_k_m"])]
        if random.chance(0.2) { arguments += ["--sample-interval", random.pick(["1e-9", "1e-6", "0", "-1", "0.01", "nan", "5", "3600", "1e9"])] }
        if random.chance(0.1) { arguments += ["--timeline", "\(directory)/timeline.csv"] }
        return arguments
    }

    /// A short, valid scenario with a few events of every kind, for the mutator to start from.
    private func makeScenario(_ random: inout FuzzRandom) -> JSONTree {
        func number(_ value: Int) -> JSONTree { .number(Double(value)) }
        let duration = random.pick([30, 60, 120, 300])
        var events: [JSONTree] = []
        for _ in 0..<random.integer(1...5) {
            let at = number(random.integer(0...duration - 1))
            switch random.integer(0...8) {
            case 0, 1:
                var event: [String: JSONTree] = ["at_s": at, "type": .string("chat"), "prompt": .string("Tell me about the sea."),
                                                 "response_tokens": number(random.integer(1...200)), "max_tokens": number(256)]
                if random.chance(0.3) {
                    event["back_to_back"] = .bool(true)
                    event["think_s"] = number(random.integer(1...10))
                    event["count"] = number(random.integer(1...5))
                }
                events.append(.object(event))
            case 2:
                events.append(.object(["at_s": at, "type": .string("summarize"), "notes": number(random.integer(1...5)),
                                       "prompt_tokens": number(random.integer(1...800)), "response_tokens": number(40),
                                       "max_tokens": number(64), "deadline_s": number(random.integer(1...600))]))
            case 3:
                events.append(.object(["at_s": at, "type": .string("background"), "prompt_tokens": number(random.integer(1...2_000)),
                                       "response_tokens": number(50), "max_tokens": number(64), "deadline_s": number(300)]))
            case 4: events.append(.object(["at_s": at, "type": .string(random.pick(["plug", "unplug"]))]))
            case 5: events.append(.object(["at_s": at, "type": .string("ambient"), "celsius": number(random.integer(-10...45))]))
            case 6: events.append(.object(["at_s": at, "type": .string("screen"), "on": .bool(random.chance(0.5))]))
            case 7: events.append(.object(["at_s": at, "type": .string("low_power_mode"), "on": .bool(random.chance(0.5))]))
            default:
                events.append(.object(["at_s": at, "type": .string("memory_pressure"),
                                       "level": .string(random.pick(["ui_hidden", "background", "moderate", "critical"]))]))
            }
        }
        return .object(["name": .string("fuzz"), "duration_s": number(duration),
                        "start": .object(["battery_pct": number(random.integer(1...100)), "ambient_c": number(random.integer(-10...45)),
                                          "plugged_in": .bool(random.chance(0.3))]),
                        "events": .array(events)])
    }

    /// Changes one value, key or piece of text of a JSON document; sometimes leaves it broken.
    private func mutateJSON(_ text: String, _ random: inout FuzzRandom) throws -> String {
        if random.chance(0.15) {
            // Text-level damage: cut, a repeated line (a duplicate key), a bare NaN.
            var lines = text.components(separatedBy: "\n")
            switch random.integer(0...2) {
            case 0: return String(text.prefix(random.integer(0...text.count)))
            case 1:
                if lines.count > 2 { let line = random.integer(1...lines.count - 2); lines.insert(lines[line], at: line) }
                return lines.joined(separator: "\n")
            default:
                return text.replacingOccurrences(of: random.pick([": 0", ": 1", ": 2", ": 3", ": 5"]), with: random.pick([": NaN", ": Infinity", ": -1e999", ": 1e999", ": 0x10"]))
            }
        }
        guard case .object(var root) = try JSONDecoder().decode(JSONTree.self, from: Data(text.utf8)) else { return text }
        for _ in 0..<random.integer(1...3) {
            if case .object(let mutated) = mutateValue(.object(root), &random) { root = mutated }
        }
        return JSONTree.object(root).text
    }

    private func mutateValue(_ value: JSONTree, _ random: inout FuzzRandom) -> JSONTree {
        switch value {
        case .object(var object) where !object.isEmpty:
            let key = random.pick(object.keys.sorted())
            switch random.integer(0...9) {
            case 0: object.removeValue(forKey: key)
            case 1: object["unknown_\(random.integer(0...9))"] = random.pick([.number(1), .string("x"), .bool(true)])
            default: object[key] = mutateValue(object[key]!, &random)
            }
            return .object(object)
        case .array(var array):
            switch random.integer(0...4) {
            case 0: return .array([])
            case 1: return .array(Array(array.prefix(random.integer(0...array.count))))
            case 2: if let last = array.last { array.append(contentsOf: Array(repeating: last, count: random.integer(1...3))) }; return .array(array)
            default:
                guard !array.isEmpty else { return value }
                let index = random.integer(0...array.count - 1)
                array[index] = mutateValue(array[index], &random)
                return .array(array)
            }
        case .number(let number):
            if random.chance(0.2) { return random.pick([.string("12"), .string(""), .null, .bool(true)]) }
            return .number(random.chance(0.5) ? random.pick(BoundaryValues.floats(near: number))
                                              : Double(random.pick(BoundaryValues.integers(near: Int(exactly: number.rounded()) ?? 0))))
        case .string:
            return .string(random.pick(["", "chat", "summarize", "android", "ios", "nonesuch", String(repeating: "x", count: 1_000), "\u{0}"]))
        default:
            return random.pick([.null, .number(0), .string("true"), .array([])])
        }
    }

    // MARK: Command lines

    /// Valid command lines over this case's files, then a few of their words changed: dropped,
    /// repeated, swapped, replaced by an edge value, or joined by a flag from another command.
    private func argumentCase(_ random: inout FuzzRandom) throws -> FuzzCase {
        let model = "\(directory)/model.gguf"
        if !FileManager.default.fileExists(atPath: model) {
            try Data(serialize(inputs.models[0])).write(to: URL(fileURLWithPath: model))
        }
        let container = "\(directory)/model.ggz"
        if !FileManager.default.fileExists(atPath: container) {
            try Data(inputs.containerBytes).write(to: URL(fileURLWithPath: container))
        }
        let database = "\(directory)/notes.db"
        let text = "\(directory)/body.txt"
        try Data("A note about the sea.\nSecond line.".utf8).write(to: URL(fileURLWithPath: text))
        let corpus: [[String]] = [
            ["plan", "--model", model, "--memory-budget", "64MiB", "--context", "256", "--json"],
            ["generate", "--model", model, "--prompt", "hello", "--max-tokens", "2", "--threads", "1", "--context", "32",
             "--temperature", "0.7", "--top-k", "40", "--top-p", "0.9", "--min-p", "0.05", "--repeat-penalty", "1.1",
             "--presence-penalty", "0.1", "--frequency-penalty", "0.1", "--seed", "3", "--context-shift", "8"],
            ["logits", "--model", model, "--ids", "1,2", "--top", "2", "--threads", "1"],
            ["tokenize", "--model", model, "--no-special"],
            ["inspect", container, "--json"],
            ["verify", container, "--threads", "1"],
            ["unpack", container, "--output", "\(directory)/out.gguf", "--threads", "1"],
            ["pack", "--model", model, "--output", "\(directory)/out.ggz", "--threads", "1", "--level", "1"],
            ["sim", "run", "--profile", "tablet", "--scenario", "sustained-decode", "--cost-model", "--json", "--sample-interval", "10",
             "--model-spec", "smollm2-135m-q4_1", "--timeline", "\(directory)/t.csv", "--report", "\(directory)/r.html"],
            ["notes", "--db", database, "add", "--title", "Sea", "--body-file", text, "--json"],
            ["notes", "--db", database, "add", "--title", "Stdin", "--body-file", "-"],
            ["notes", "--db", database, "list", "--json"],
            ["notes", "--db", database, "search", "sea", "--json"],
            ["notes", "--db", database, "show", "1", "--json"],
            ["notes", "--db", database, "tag", "1", "work"],
            ["notes", "--db", database, "rm", "1", "2"],
            ["notes", "--db", database, "restore", "1"],
            ["notes", "--db", database, "edit", "1", "--title", "Ocean"],
            ["notes", "--db", database, "export", "\(directory)/export"],
            ["notes", "--db", database, "import", text],
            ["sim", "sweep", "--profiles", "", "--scenarios", ""],
        ]
        let flags = ["--json", "--overwrite", "--threads", "--context", "--memory-budget", "--kv-type", "--model", "--output", "--max-tokens",
                     "--temperature", "--top-k", "--seed", "--stream-weights", "--parse-special", "--sample-interval", "--policy", "--db", "--purge"]
        var arguments = random.pick(corpus)
        for _ in 0..<random.integer(1...3) {
            guard !arguments.isEmpty else { break }
            let index = random.integer(0...arguments.count - 1)
            switch random.integer(0...5) {
            case 0: arguments.remove(at: index)
            case 1: arguments.insert(arguments[index], at: index)
            case 2: arguments.swapAt(index, random.integer(0...arguments.count - 1))
            case 3: arguments.insert(contentsOf: [random.pick(flags), random.pick(BoundaryValues.argumentValues)], at: index)
            default:
                // Never a command word: the values after the first two words.
                if index >= 2 { arguments[index] = random.pick(BoundaryValues.argumentValues + [model, container, database, text, directory]) }
            }
        }
        // Nothing that reaches the network or runs for minutes: catalog fetches, benchmarks, real-token
        // simulations, the full matrix and model summaries are fuzzed elsewhere or not at all.
        let slow: Set<String> = ["models", "fetch", "bench", "--bench", "--real-tokens", "matrix", "sweep", "summarize", "eval", "compare", "stress-writer"]
        if arguments.contains(where: slow.contains), arguments != ["sim", "sweep", "--profiles", "", "--scenarios", ""] {
            arguments = ["plan", "--model", model, "--json"]
        }
        // A missing --model means the catalog's SmolLM2: real but slow for a fuzzer; keep it rare.
        if ["generate", "logits", "tokenize", "perplexity"].contains(arguments.first ?? ""), !arguments.contains("--model"), !random.chance(0.02) {
            arguments += ["--model", model]
        }
        return FuzzCase(kind: "arguments", arguments: arguments, standardInput: Array(randomText(&random).utf8))
    }
}

/// A fuzzer setup problem (not a finding): a missing fixture, a worker that cannot start.
struct FuzzError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A JSON document as a tree, for mutation; written back with sorted keys and with non-finite
/// numbers as the bare words a hostile file would use.
indirect enum JSONTree: Decodable {
    case object([String: JSONTree])
    case array([JSONTree])
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([JSONTree].self) { self = .array(value) }
        else { self = .object(try container.decode([String: JSONTree].self)) }
    }

    var text: String {
        switch self {
        case .object(let object): return "{" + object.keys.sorted().map { "\(JSONString.quote($0)):\(object[$0]!.text)" }.joined(separator: ",") + "}"
        case .array(let array): return "[" + array.map(\.text).joined(separator: ",") + "]"
        case .string(let string): return JSONString.quote(string)
        case .bool(let flag): return flag ? "true" : "false"
        case .null: return "null"
        case .number(let value):
            if value.isNaN { return "NaN" }
            if value.isInfinite { return value > 0 ? "Infinity" : "-Infinity" }
            if value == value.rounded(), abs(value) < 1e18 { return String(Int64(value)) }
            return "\(value)"
        }
    }
}

import EmberCore
import EmberLM
import Foundation
import Testing

/// A small vocabulary shaped like a real one: every single byte (as byte-level BPE and
/// SentencePiece byte fallback have), tokens spanning several grammar symbols (`{"`, `":"`,
/// `"},{"`), words, digits and multi-byte UTF-8 (whole characters and a character split across
/// tokens), plus an end-of-generation token with no bytes.
enum GrammarVocabulary {
    static let pieces: [String] = [
        "{", "}", "{\"", "\":", "\":\"", "\",\"", "\"}", "\"},{\"", "[{\"", "}]", "\"]", "[\"", "\",", ",\"", "\":[", "],\"",
        "true", "false", "null", "tr", "ue", "nu", "ll", "12", "2026", "-1", ".5", "0.", "99", "-", "10",
        "name", "task", "owner", "due", "item", "amount", "a", "ab", "abc", "the", " the", "Alice", "Bob", "lunch",
        "é", "日本", "ü", "\"é", "é\"", "\\n", "\\\"", "\\u00", "meeting", "-0", "00", "2026-", "-12-", "T",
    ]

    static var tokenBytes: [[UInt8]] {
        var tokens = (0...255).map { [UInt8($0)] }
        tokens += pieces.map { Array($0.utf8) }
        // The two halves of "€" (E2 82 AC) as tokens of their own.
        tokens.append([0xE2, 0x82])
        tokens.append([0xAC, 0x22])
        tokens.append([]) // end of generation
        return tokens
    }

    static var endOfGeneration: Int32 { Int32(tokenBytes.count - 1) }

    static let trie = TokenByteTrie(tokenBytes: tokenBytes, endOfGenerationIDs: [endOfGeneration])

    static func constraint(_ format: OutputFormat) throws -> TokenConstraint {
        TokenConstraint(grammar: try Grammar(format), trie: trie)
    }
}

/// Random schemas from the supported subset, and random valid instances of them.
struct SchemaGenerator {
    var random: SeededRandomSource

    init(seed: UInt64) { random = SeededRandomSource(seed: seed) }

    mutating func int(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &random) }
    mutating func chance(_ p: Double) -> Bool { random.nextUnitValue() < p }

    /// A schema as JSON text (properties in a random order the grammar must keep).
    mutating func schema(depth: Int = 0) -> String {
        let kinds = depth >= 2 ? ["string", "integer", "number", "boolean", "null", "enum"]
                               : ["string", "integer", "number", "boolean", "null", "enum", "array", "object", "object"]
        switch kinds[int(0...(kinds.count - 1))] {
        case "string":
            switch int(0...3) {
            case 0: return #"{"type":"string","maxLength":\#(int(0...6))}"#
            case 1: return #"{"type":"string","pattern":"[a-z]{1,4}(-\\d{2})?"}"#
            case 2: return #"{"type":"string","minLength":1,"maxLength":4}"#
            default: return #"{"type":"string","format":"date"}"#
            }
        case "integer":
            let low = int(-50...50)
            switch int(0...3) {
            case 0: return #"{"type":"integer"}"#
            case 1: return #"{"type":"integer","minimum":\#(low)}"#
            case 2: return #"{"type":"integer","maximum":\#(low)}"#
            default: return #"{"type":"integer","minimum":\#(low),"maximum":\#(low + int(0...300))}"#
            }
        case "number":
            let low = int(-20...20)
            return chance(0.5) ? #"{"type":"number"}"# : #"{"type":"number","minimum":\#(low),"maximum":\#(low + int(0...40))}"#
        case "boolean": return #"{"type":"boolean"}"#
        case "null": return #"{"type":"null"}"#
        case "enum": return #"{"enum":["red","green","blü",3,null]}"#
        case "array":
            let minimum = int(0...2)
            return #"{"type":"array","items":\#(schema(depth: depth + 1)),"minItems":\#(minimum),"maxItems":\#(minimum + int(0...3))}"#
        default:
            let names = ["a", "task", "owner", "due", "amount", "name", "é"].shuffled(using: &random).prefix(int(0...4))
            let properties = names.map { #""\#($0)":\#(schema(depth: depth + 1))"# }.joined(separator: ",")
            let required = names.filter { _ in chance(0.6) }.map { #""\#($0)""# }.joined(separator: ",")
            return #"{"type":"object","properties":{\#(properties)},"required":[\#(required)],"additionalProperties":false}"#
        }
    }

    /// A random instance of `schema`, as the compact JSON the grammar writes (properties in schema order).
    mutating func instance(_ schema: JSONValue) -> String {
        if case .array(let values)? = schema["enum"] { return compact(values[int(0...(values.count - 1))]) }
        guard case .string(let type)? = schema["type"] else { return "null" }
        switch type {
        case "null": return "null"
        case "boolean": return chance(0.5) ? "true" : "false"
        case "integer":
            let low = number(schema["minimum"]).map { Int($0) } ?? -1000, high = number(schema["maximum"]).map { Int($0) } ?? 1000
            return String(int(low...max(low, high)))
        case "number":
            let low = number(schema["minimum"]) ?? -1000, high = number(schema["maximum"]) ?? 1000
            let whole = int(Int(low)...Int(max(low, high)))
            return whole < Int(high) && chance(0.5) ? "\(whole).\(int(0...99))" : String(whole)
        case "string":
            if schema["format"] != nil { return "\"2026-0\(int(1...9))-1\(int(0...9))\"" }
            if schema["pattern"] != nil { return "\"" + String(repeating: "q", count: int(1...4)) + (chance(0.5) ? "-42" : "") + "\"" }
            let minimum = number(schema["minLength"]).map { Int($0) } ?? 0, maximum = number(schema["maxLength"]).map { Int($0) } ?? 8
            let alphabet = ["a", "é", "日", "\\n", "\\\"", "€", " ", "\\u00e9"]
            return "\"" + (0..<int(minimum...max(minimum, maximum))).map { _ in alphabet[int(0...(alphabet.count - 1))] }.joined() + "\""
        case "array":
            guard let items = schema["items"] else { return "[]" }
            let minimum = number(schema["minItems"]).map { Int($0) } ?? 0, maximum = number(schema["maxItems"]).map { Int($0) } ?? 3
            return "[" + (0..<int(minimum...max(minimum, maximum))).map { _ in instance(items) }.joined(separator: ",") + "]"
        default:
            guard case .object(let properties)? = schema["properties"] else { return "{}" }
            var required: [String] = []
            if case .array(let names)? = schema["required"] {
                for case .string(let name) in names { required.append(name) }
            }
            let members = properties.filter { required.contains($0.0) || chance(0.5) }
            return "{" + members.map { compact(.string($0.0)) + ":" + instance($0.1) }.joined(separator: ",") + "}"
        }
    }

    func number(_ value: JSONValue?) -> Double? {
        if case .number(let number, _)? = value { return number }
        return nil
    }

    func compact(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(_, let text): return text
        case .string(let text):
            let data = try! JSONSerialization.data(withJSONObject: [text], options: [])
            return String(String(decoding: data, as: UTF8.self).dropFirst().dropLast()).replacingOccurrences(of: "\\/", with: "/")
        case .array(let items): return "[" + items.map(compact).joined(separator: ",") + "]"
        case .object(let members): return "{" + members.map { compact(.string($0.0)) + ":" + compact($0.1) }.joined(separator: ",") + "}"
        }
    }
}

/// A JSON Schema validator for the supported subset, written apart from the compiler: the judge of
/// every completed output.
enum SchemaValidator {
    static func validate(_ value: JSONValue, _ schema: JSONValue) -> Bool {
        if case .array(let values)? = schema["enum"] { return values.contains(value) }
        if let constant = schema["const"] { return constant == value }
        guard case .string(let type)? = schema["type"] else { return false }
        func bound(_ key: String) -> Double? {
            if case .number(let number, _)? = schema[key] { return number }
            return nil
        }
        switch (type, value) {
        case ("null", .null), ("boolean", .bool): return true
        case ("integer", .number(let number, let text)):
            guard !text.contains("."), !text.lowercased().contains("e") else { return false }
            return number >= (bound("minimum") ?? -.infinity) && number <= (bound("maximum") ?? .infinity)
        case ("number", .number(let number, _)):
            return number >= (bound("minimum") ?? -.infinity) && number <= (bound("maximum") ?? .infinity)
        case ("string", .string(let text)):
            let length = text.unicodeScalars.count
            guard Double(length) >= (bound("minLength") ?? 0), Double(length) <= (bound("maxLength") ?? .infinity) else { return false }
            var pattern: String?
            if case .string(let value)? = schema["pattern"] { pattern = value }
            if case .string("date")? = schema["format"] { pattern = #"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"# }
            if let pattern {
                return text.range(of: "^(?:" + pattern + ")$", options: .regularExpression) != nil
            }
            return true
        case ("array", .array(let items)):
            guard Double(items.count) >= (bound("minItems") ?? 0), Double(items.count) <= (bound("maxItems") ?? .infinity),
                  let itemSchema = schema["items"] else { return false }
            return items.allSatisfy { validate($0, itemSchema) }
        case ("object", .object(let members)):
            guard case .object(let properties)? = schema["properties"] ?? .object([]) else { return false }
            var required: [String] = []
            if case .array(let names)? = schema["required"] { for case .string(let name) in names { required.append(name) } }
            let keys = members.map(\.0)
            guard Set(keys).count == keys.count, required.allSatisfy(keys.contains) else { return false }
            return members.allSatisfy { key, member in
                guard let propertySchema = properties.first(where: { $0.0 == key })?.1 else { return false }
                return validate(member, propertySchema)
            }
        default:
            return false
        }
    }
}

@Suite("Grammar-constrained decoding")
struct GrammarTests {
    /// Samples with random logits through the real sampler chain until the constraint ends the
    /// output, checking at every step that the mask is exactly the set of tokens the reference
    /// automaton allows (so no valid continuation is masked out, and no invalid one let through).
    func constrainedWalk(_ constraint: TokenConstraint, seed: UInt64, budget: Int, temperature: Float = 1) -> (bytes: [UInt8], ended: Bool, mismatches: [String]) {
        let trie = GrammarVocabulary.trie
        var sampler = Sampler(parameters: SamplingParameters(temperature: temperature, topK: 0, topP: 1, minP: 0, seed: seed, constraint: constraint))
        sampler.tokenBudget = budget
        var random = SeededRandomSource(seed: seed &+ 99)
        var reference = Grammar.ReferenceMatcher(constraint.grammar)
        var output: [UInt8] = []
        var mismatches: [String] = []
        for _ in 0..<budget {
            let fullMask = constraint.mask(sampler.constraintState)
            let mask = Set(fullMask.tokens)
            // The one-token check a sampler makes before masking agrees with the mask, remaining bytes included.
            let remaining = Dictionary(uniqueKeysWithValues: zip(fullMask.tokens, fullMask.remainingBytes))
            for id in 0..<Int32(trie.vocabularySize) where constraint.remainingBytes(after: id, in: sampler.constraintState) != remaining[id] {
                if mismatches.count < 5 { mismatches.append("after \(String(decoding: output, as: UTF8.self)) token \(id): check and mask differ") }
            }
            for id in 0..<trie.vocabularySize {
                let token = Int32(id)
                let allowed: Bool
                if token == GrammarVocabulary.endOfGeneration {
                    allowed = reference.isAccepting
                } else {
                    var next = reference
                    allowed = next.feed(trie.tokenBytes[id])
                }
                if allowed != mask.contains(token), mismatches.count < 5 {
                    mismatches.append("after \(String(decoding: output, as: UTF8.self)) token \(trie.tokenBytes[id]) reference \(allowed)")
                }
            }
            let logits = (0..<trie.vocabularySize).map { _ in Float(random.nextUnitValue() * 8) }
            let token = logits.withUnsafeBufferPointer { sampler.sample($0) }
            if token == GrammarVocabulary.endOfGeneration { return (output, true, mismatches) }
            sampler.accept(token)
            output += trie.tokenBytes[Int(token)]
            reference.feed(trie.tokenBytes[Int(token)])
            if sampler.isOutputComplete { return (output, true, mismatches) }
        }
        return (output, sampler.isOutputAccepted, mismatches)
    }

    @Test("Random schemas, random logits: masks match the reference automaton, every output validates", arguments: 0..<24)
    func randomSchemas(seed: Int) throws {
        var generator = SchemaGenerator(seed: UInt64(seed) * 7919 + 1)
        let text = generator.schema()
        let schema = try JSONValue.parse(text)
        let constraint = try GrammarVocabulary.constraint(.jsonSchema(text))
        for run in 0..<3 {
            let (bytes, ended, mismatches) = constrainedWalk(constraint, seed: UInt64(seed * 31 + run), budget: 160)
            #expect(mismatches.isEmpty, "schema \(text): \(mismatches)")
            let output = String(decoding: bytes, as: UTF8.self)
            #expect(ended, "schema \(text): the output did not complete within its budget: \(output)")
            #expect(String(validating: bytes, as: UTF8.self) != nil, "invalid UTF-8: \(bytes)")
            #expect((try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])) != nil,
                    "schema \(text): not JSON: \(output)")
            let value = try JSONValue.parse(output)
            #expect(SchemaValidator.validate(value, schema), "schema \(text): \(output) does not validate")
        }
    }

    @Test("Random valid instances are accepted, token by token through the masks", arguments: 0..<24)
    func validInstancesAccepted(seed: Int) throws {
        var generator = SchemaGenerator(seed: UInt64(seed) * 104_729 + 5)
        let text = generator.schema()
        let schema = try JSONValue.parse(text)
        let constraint = try GrammarVocabulary.constraint(.jsonSchema(text))
        for _ in 0..<4 {
            let instance = generator.instance(schema)
            guard SchemaValidator.validate(try JSONValue.parse(instance), schema) else { continue }
            #expect(constraint.grammar.accepts(instance), "schema \(text) rejects its valid instance \(instance)")
            // Longest-match tokenization: each token must be in the mask of the state before it.
            let bytes = Array(instance.utf8)
            var state = constraint.initialState, position = 0
            while position < bytes.count {
                let length = (1...min(6, bytes.count - position)).reversed().first { length in
                    GrammarVocabulary.tokenBytes.contains(Array(bytes[position..<(position + length)]))
                }!
                let id = Int32(GrammarVocabulary.tokenBytes.firstIndex(of: Array(bytes[position..<(position + length)]))!)
                #expect(constraint.mask(state).tokens.contains(id), "\(instance): token at byte \(position) masked out")
                state = constraint.advance(state, token: id)
                position += length
            }
            #expect(constraint.isAccepting(state))
            #expect(constraint.mask(state).tokens.contains(GrammarVocabulary.endOfGeneration))
        }
    }

    @Test("A long free string is closed in time when the budget runs short")
    func forcedClose() throws {
        let text = #"{"type":"object","properties":{"task":{"type":"string"},"owner":{"type":"string"}},"required":["task","owner"]}"#
        let constraint = try GrammarVocabulary.constraint(.jsonSchema(text))
        for budget in [12, 20, 40] {
            // Greedy on logits that love "abc": left alone it would never close the string.
            var sampler = Sampler(parameters: SamplingParameters(temperature: 0, topK: 1, topP: 1, minP: 0, constraint: constraint))
            sampler.tokenBudget = budget
            var logits = [Float](repeating: 0, count: GrammarVocabulary.trie.vocabularySize)
            logits[GrammarVocabulary.tokenBytes.firstIndex(of: Array("abc".utf8))!] = 10
            var output: [UInt8] = []
            var used = 0
            while used < budget, !sampler.isOutputComplete {
                let token = logits.withUnsafeBufferPointer { sampler.sample($0) }
                sampler.accept(token)
                output += GrammarVocabulary.tokenBytes[Int(token)]
                used += 1
            }
            let document = String(decoding: output, as: UTF8.self)
            #expect(sampler.isOutputComplete, "budget \(budget): \(document)")
            #expect(try SchemaValidator.validate(JSONValue.parse(document), JSONValue.parse(text)))
        }
        #expect(throws: LanguageModelError.self) { try constraint.checkCompletes(within: 3) }
        try constraint.checkCompletes(within: 12)
    }

    @Test("Regular expressions: whole matches, classes over UTF-8, quantifiers")
    func regularExpressions() throws {
        let cases: [(String, [String], [String])] = [
            (#"\d{3}-\d{4}"#, ["555-1234"], ["5551234", "555-123", "555-12345"]),
            ("(cat|dog)s?", ["cat", "dogs"], ["cats!", "bird"]),
            ("[α-ω]+", ["αβγ", "ω"], ["abc", ""]),
            ("[^a-z]{2}", ["AB", "日本", "€1"], ["ab", "A"]),
            (".é.", ["aéb", "日é€"], ["aé\n"]),
            (#"^[A-Z][a-z]*( [A-Z][a-z]*)*$"#, ["Alice Smith", "Bob"], ["alice", "Bob "]),
            (#"\w+@\w+\.com"#, ["a_b@x.com"], ["a@b.org"]),
            ("a{2,}b{0,1}", ["aa", "aaaab"], ["a", "aabb"]),
            (#"\u{1F600}|\x41"#, ["😀", "A"], ["B"]),
        ]
        for (pattern, matches, nonMatches) in cases {
            let grammar = try Grammar(.regularExpression(pattern))
            for text in matches { #expect(grammar.accepts(text), "/\(pattern)/ should match \(text)") }
            for text in nonMatches { #expect(!grammar.accepts(text), "/\(pattern)/ should not match \(text)") }
            let constraint = try GrammarVocabulary.constraint(.regularExpression(pattern))
            for seed in 0..<4 {
                let (bytes, ended, mismatches) = constrainedWalk(constraint, seed: UInt64(seed), budget: 60)
                #expect(mismatches.isEmpty, "/\(pattern)/: \(mismatches)")
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(ended && grammar.accepts(text), "/\(pattern)/ produced \(text)")
                #expect(text.range(of: "^(?:" + pattern.replacingOccurrences(of: #"\u{1F600}"#, with: "😀") + ")$",
                                   options: .regularExpression) != nil || pattern == ".é.", "/\(pattern)/: \(text)")
            }
        }
    }

    @Test("Choices: one of the labels, ending as soon as it is complete")
    func choices() throws {
        let labels = ["meeting", "todo", "idea", "receipt", "meet"]
        let constraint = try GrammarVocabulary.constraint(.choices(labels))
        var seen: Set<String> = []
        for seed in 0..<40 {
            let (bytes, ended, mismatches) = constrainedWalk(constraint, seed: UInt64(seed), budget: 20)
            #expect(mismatches.isEmpty, "\(mismatches)")
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(ended && labels.contains(text), "\(text)")
            seen.insert(text)
        }
        #expect(seen.count >= 3, "random logits should reach several labels: \(seen)")
        // "meet" is a prefix of "meeting": complete there only with the end-of-generation token.
        let state = constraint.advance(constraint.initialState, bytes: Array("meet".utf8))
        #expect(constraint.isAccepting(state) && !constraint.isComplete(state))
        #expect(constraint.isComplete(constraint.advance(constraint.initialState, bytes: Array("todo".utf8))))
    }

    @Test("Unsupported schema features and invalid patterns are refused, naming them", arguments: [
        (#"{"anyOf":[{"type":"string"}]}"#, "anyOf"),
        (##"{"type":"object","properties":{"x":{"$ref":"#/defs/a"}}}"##, "$ref"),
        (#"{"type":"string","format":"email"}"#, "format: email"),
        (#"{"type":"array"}"#, "without 'items'"),
        (#"{"type":"object","additionalProperties":true}"#, "additionalProperties"),
        (#"{"type":"integer","minimum":5,"maximum":3}"#, "greater than the maximum"),
        (#"{"type":"string","pattern":"(a"}"#, "unclosed '('"),
        (#"{"type":"string","pattern":"(?=a)b"}"#, "lookaround"),
        (#"{"type":"number","multipleOf":2}"#, "multipleOf"),
        (#"{"description":"no type"}"#, "without 'type'"),
        (#"{"type":"object","required":["x"]}"#, "'required' names 'x'"),
        (#"{"type": "string""#, "not valid JSON"),
        (#"{"type":"array","items":{"type":"null"},"minItems":3,"maxItems":1}"#, "'minItems' 3 is greater"),
    ])
    func unsupportedSchemas(schema: String, named: String) {
        #expect {
            _ = try Grammar(.jsonSchema(schema))
        } throws: { error in
            let message = "\(error)"
            return message.contains(named) && !message.contains("\n")
        }
    }

    @Test("Invalid and unsupported regular expressions are refused", arguments: [
        ("(ab", "unclosed '('"), ("ab)", "unmatched ')'"), ("*a", "nothing to repeat"), ("a{3,1}", "maximum below"),
        (#"(a)\1"#, "backreference"), ("a*?", "lazy"), (#"\bword"#, "word boundary"), ("[a-", "unclosed '['"),
        ("(?i)abc", "inline flags"), ("[z-a]", "out of order"), ("a{5000}", "over 1000"),
    ])
    func invalidExpressions(pattern: String, named: String) {
        #expect {
            _ = try Grammar(.regularExpression(pattern))
        } throws: { error in
            "\(error)".contains(named)
        }
    }

    @Test("Choices without options, and grammars no output satisfies, are refused")
    func impossible() {
        #expect(throws: LanguageModelError.self) { try Grammar(.choices([])) }
        #expect(throws: LanguageModelError.self) { try Grammar(.choices(["a", ""])) }
        #expect(throws: LanguageModelError.self) { try Grammar(.regularExpression("[^\\x00-\\u{10FFFF}]")) }
    }

    @Test("Integer and number ranges: exactly the values in range")
    func numericRanges() throws {
        let integer = try Grammar(.jsonSchema(#"{"type":"integer","minimum":-15,"maximum":123}"#))
        for value in -40...200 {
            #expect(integer.accepts(String(value)) == (-15...123).contains(value), "\(value)")
        }
        #expect(!integer.accepts("007") && !integer.accepts("-0") && !integer.accepts("+5"))
        let number = try Grammar(.jsonSchema(#"{"type":"number","minimum":-2,"maximum":3}"#))
        for (text, valid) in [("3", true), ("3.0", true), ("3.01", false), ("2.99", true), ("-2", true), ("-2.5", false),
                              ("-1.75", true), ("0.5", true), ("4", false), ("1e2", false)] {
            #expect(number.accepts(text) == valid, "\(text)")
        }
    }

    @Test("The token trie walk gives the same masks as checking every token on its own")
    func trieAgainstBruteForce() throws {
        let constraint = try GrammarVocabulary.constraint(.jsonSchema(#"{"type":"object","properties":{"name":{"type":"string","maxLength":3},"due":{"type":"string","format":"date"}},"required":["name"]}"#))
        let grammar = constraint.grammar
        for prefix in ["", "{", "{\"name\":\"", "{\"name\":\"é", "{\"name\":\"ab\",\"due\":\"2026-", "{\"name\":\"\u{20AC}"] {
            var reference = Grammar.ReferenceMatcher(grammar)
            let fed = reference.feed(Array(prefix.utf8))
            #expect(fed, "\(prefix)")
            let state = constraint.advance(constraint.initialState, bytes: Array(prefix.utf8))
            let mask = Set(constraint.mask(state).tokens)
            for (id, bytes) in GrammarVocabulary.tokenBytes.enumerated() where !bytes.isEmpty {
                var next = reference
                let allowed = next.feed(bytes)
                #expect(allowed == mask.contains(Int32(id)), "\(prefix) + \(bytes)")
            }
        }
    }
    /// Random logits with ties (values on a coarse grid), NaN and −∞ among them, as a model's can be.
    static func awkwardLogits(_ random: inout SeededRandomSource, count: Int) -> [Float] {
        (0..<count).map { _ in
            let draw = random.nextUnitValue()
            if draw < 0.01 { return .nan }
            if draw < 0.03 { return -.infinity }
            return Float((random.nextUnitValue() * 16).rounded()) / 2
        }
    }

    @Test("Checking the leading tokens first chooses exactly the token the full mask chooses", arguments: 0..<24)
    func leadingTokensMatchMask(seed: Int) throws {
        var generator = SchemaGenerator(seed: UInt64(seed) * 6_151 + 11)
        let text = generator.schema()
        let constraint = try GrammarVocabulary.constraint(.jsonSchema(text))
        let settings: [SamplingParameters] = [
            .greedy,
            SamplingParameters(temperature: 0.8, topK: 5, topP: 0.9, minP: 0.05),
            SamplingParameters(temperature: 1.5, topK: 40, topP: 1, minP: 0, repetitionPenalty: 1.3, frequencyPenalty: 0.2, presencePenalty: 0.1),
            SamplingParameters(temperature: 0, topK: 1, topP: 1, minP: 0, repetitionPenalty: 0.7, noRepeatNGramSize: 2),
            SamplingParameters(temperature: 1, topK: 1, topP: 1, minP: 0),
            SamplingParameters(temperature: 1, topK: 100, topP: 0.95, minP: 0.02, presencePenalty: -1),
        ]
        let vocabulary = GrammarVocabulary.trie.vocabularySize
        var random = SeededRandomSource(seed: UInt64(seed) &+ 4_242)
        for (index, var parameters) in settings.enumerated() {
            parameters.seed = UInt64(seed * 100 + index)
            parameters.constraint = constraint
            for budget in [nil, 24] as [Int?] {
                var checking = Sampler(parameters: parameters), masking = Sampler(parameters: parameters)
                masking.checksLeadingTokensFirst = false
                checking.tokenBudget = budget
                masking.tokenBudget = budget
                // A prompt for the penalties to see.
                for _ in 0..<6 {
                    let token = Int32(Int.random(in: 0..<vocabulary, using: &random))
                    checking.accept(token)
                    masking.accept(token)
                }
                var output: [UInt8] = []
                for _ in 0..<(budget ?? 80) {
                    let logits = Self.awkwardLogits(&random, count: vocabulary)
                    let fast = logits.withUnsafeBufferPointer { checking.sample($0) }
                    let full = logits.withUnsafeBufferPointer { masking.sample($0) }
                    try #require(fast == full, "schema \(text), setting \(index), budget \(String(describing: budget)), after \(String(decoding: output, as: UTF8.self))")
                    if fast == GrammarVocabulary.endOfGeneration { break }
                    checking.accept(fast)
                    masking.accept(full)
                    output += GrammarVocabulary.tokenBytes[Int(fast)]
                    if checking.isOutputComplete { break }
                }
            }
        }
        let statistics = constraint.maskStatistics
        #expect(statistics.checkedSteps > 0, "the leading tokens never settled a step: \(statistics)")
        #expect(statistics.steps > statistics.checkedSteps, "every step was settled without a mask: \(statistics)")
    }

    @Test("Temperature sampling under a grammar draws from the masked distribution")
    func maskedDistribution() throws {
        // Three allowed first tokens; disallowed ones with larger logits around them.
        let constraint = try GrammarVocabulary.constraint(.regularExpression("[abc]x"))
        let id = { (text: String) in Int32(GrammarVocabulary.tokenBytes.firstIndex(of: Array(text.utf8))!) }
        var logits = [Float](repeating: -4, count: GrammarVocabulary.trie.vocabularySize)
        logits[Int(id("a"))] = 1
        logits[Int(id("b"))] = 2
        logits[Int(id("c"))] = 0.5
        logits[Int(id("z"))] = 6
        logits[Int(id("abc"))] = 5
        logits[Int(id("ab"))] = 3
        let weights: [Float] = [1, 2, 0.5].map { expf($0 / 0.9) }
        let expected = weights.map { $0 / weights.reduce(0, +) }
        for checksFirst in [true, false] {
            var sampler = Sampler(parameters: SamplingParameters(temperature: 0.9, topK: 3, topP: 1, minP: 0, seed: 7, constraint: constraint))
            sampler.checksLeadingTokensFirst = checksFirst
            var counts: [Int32: Int] = [:]
            let draws = 6_000
            for _ in 0..<draws { counts[logits.withUnsafeBufferPointer { sampler.sample($0) }, default: 0] += 1 }
            #expect(Set(counts.keys).isSubset(of: [id("a"), id("b"), id("c")]), "\(counts)")
            for (token, probability) in zip([id("a"), id("b"), id("c")], expected) {
                let observed = Double(counts[token, default: 0]) / Double(draws)
                #expect(abs(observed - Double(probability)) < 0.025, "checks first \(checksFirst): token \(token) drawn \(observed), masked softmax \(probability)")
            }
        }
    }
    /// `compact` with white space the grammar allows after `{ [ , :` and before `} ]` (outside
    /// strings): nothing, one space, or a line break and an indent of up to 16 spaces or tabs.
    static func spaced(_ compact: String, random: inout SeededRandomSource) -> String {
        func gap() -> String {
            switch Int.random(in: 0..<3, using: &random) {
            case 0: return ""
            case 1: return " "
            default: return "\n" + String(repeating: Bool.random(using: &random) ? " " : "\t", count: Int.random(in: 0...16, using: &random))
            }
        }
        var result = "", inString = false, escaped = false
        var opened = false
        for character in compact {
            if inString {
                result.append(character)
                if escaped { escaped = false } else if character == "\\" { escaped = true } else if character == "\"" { inString = false }
                continue
            }
            // One gap between two tokens: an empty `{}` or `[]` gets the gap after its opening only.
            if (character == "}" || character == "]") && !opened { result += gap() }
            result.append(character)
            if character == "\"" { inString = true }
            opened = character == "{" || character == "["
            if "{[,:".contains(character) { result += gap() }
        }
        return result
    }

    @Test("Random valid instances written with white space between tokens are accepted, through the masks too", arguments: 0..<16)
    func spacedInstancesAccepted(seed: Int) throws {
        var generator = SchemaGenerator(seed: UInt64(seed) * 7_777 + 3)
        var random = SeededRandomSource(seed: UInt64(seed) &+ 12_345)
        let text = generator.schema()
        let schema = try JSONValue.parse(text)
        let constraint = try GrammarVocabulary.constraint(.jsonSchema(text))
        for _ in 0..<4 {
            let compact = generator.instance(schema)
            guard SchemaValidator.validate(try JSONValue.parse(compact), schema) else { continue }
            let spaced = Self.spaced(compact, random: &random)
            #expect(constraint.grammar.accepts(spaced), "schema \(text) rejects \(spaced)")
            // Byte by byte through the masks (every single byte is a token).
            var state = constraint.initialState
            for byte in spaced.utf8 {
                #expect(constraint.mask(state).tokens.contains(Int32(byte)), "\(spaced): byte \(byte) masked out")
                state = constraint.advance(state, token: Int32(byte))
            }
            #expect(constraint.isComplete(state) || constraint.isAccepting(state))
        }
    }

    @Test("White space between JSON tokens is bounded, and never before, after or inside the document's tokens")
    func boundedWhiteSpace() throws {
        let schema = #"{"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{"task":{"type":"string"},"n":{"type":["integer","null"]}},"required":["task","n"]}}},"required":["items"]}"#
        let grammar = try Grammar(.jsonSchema(schema))
        for accepted in [#"{"items":[]}"#, "{\n  \"items\": [\n    {\n      \"task\": \"a b\",\n      \"n\": 12\n    }\n  ]\n}",
                         #"{ "items": [ ] }"#,
                         "{\"items\":[\n\t\t{\"task\":\"x\", \"n\":null}]}", "{\"items\":[\n" + String(repeating: " ", count: 16) + "]}"] {
            #expect(grammar.accepts(accepted), "\(accepted)")
        }
        for refused in [#" {"items":[]}"#, "{\"items\":[]} ", "{\"items\":[]}\n", "{\"items\":[\n" + String(repeating: " ", count: 17) + "]}",
                        #"{"items":  []}"#, #"{"items" :[]}"#, #"{"items":[{"task":"x","n":1 2}]}"#, "{\"items\":\t[]}",
                        "{\"items\":\n\n[]}", "{\r\n\"items\":[]}"] {
            #expect(!grammar.accepts(refused), "\(refused)")
        }
        // The mask after the document's last brace holds only the end of generation.
        let constraint = try GrammarVocabulary.constraint(.jsonSchema(schema))
        var state = constraint.initialState
        for byte in #"{"items":[]}"#.utf8 { state = constraint.advance(state, token: Int32(byte)) }
        #expect(constraint.mask(state).tokens == [GrammarVocabulary.endOfGeneration])
    }

    @Test("The shortest completion of a prefix ends the document; random prefixes of valid instances complete to accepted ones", arguments: 0..<12)
    func shortestCompletion(seed: Int) throws {
        let simple = try Grammar(.jsonSchema(#"{"type":"object","properties":{"task":{"type":"string"},"count":{"type":"integer","minimum":3}},"required":["task","count"]}"#))
        #expect(simple.shortestCompletion(after: Array(#"{"task":"ab"#.utf8)).map { String(decoding: $0, as: UTF8.self) } == #"","count":3}"#)
        #expect(simple.shortestCompletion(after: Array(#"{"task":"","count":3}"#.utf8)) == [])
        #expect(simple.shortestCompletion(after: Array("x".utf8)) == nil)
        var generator = SchemaGenerator(seed: UInt64(seed) * 31_337 + 11)
        var random = SeededRandomSource(seed: UInt64(seed) &+ 777)
        let text = generator.schema()
        let schema = try JSONValue.parse(text)
        let grammar = try Grammar(.jsonSchema(text))
        for _ in 0..<4 {
            let bytes = Array(Self.spaced(generator.instance(schema), random: &random).utf8)
            guard grammar.acceptsWhole(bytes) else { continue }
            let prefix = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &random)))
            let completion = try #require(grammar.shortestCompletion(after: prefix), "schema \(text) prefix \(prefix)")
            #expect(grammar.acceptsWhole(prefix + completion), "schema \(text): \(String(decoding: prefix + completion, as: UTF8.self))")
            // The instance's own rest completes the prefix, so the shortest is no longer.
            #expect(completion.count <= bytes.count - prefix.count)
        }
    }

    @Test("JSON values parse with their key order and number text; errors say what and at which byte", arguments: [
        ("{\"b\": [1, 2.50, -3e2], \"a\": null}", nil),
        ("\"x\u{01}\"", "a control character in a string at byte 3"),
        ("[1 2]", "expected ',' at byte 4"),
        ("{\"a\" 1}", "expected ':' at byte 6"),
        ("{\"a\": 1", "an unclosed '{' at byte 8"),
        ("\"\\ud800\"", "expected '\\u' at byte 8"),
        ("[01]", "a number with a leading zero at byte 4"),
        ("-x", "unexpected character at byte 2"),
        ("nul", "expected 'null' at byte 1"),
        ("{} {}", "text after the value at byte 4"),
    ] as [(String, String?)])
    func jsonValues(text: String, expected: String?) throws {
        guard let expected else {
            let value = try JSONValue.parse(text)
            guard case .object(let members) = value, case .array(let items)? = value["b"] else { Issue.record("\(value)"); return }
            #expect(members.map(\.0) == ["b", "a"])
            #expect(items.map { if case .number(_, let text) = $0 { text } else { "" } } == ["1", "2.50", "-3e2"])
            return
        }
        do {
            _ = try JSONValue.parse(text)
            Issue.record("\(text) parsed")
        } catch {
            #expect(error.message == expected)
        }
    }
}

import EmberCore

/// What shape a generation's output must have: the grammar its tokens are constrained to.
public enum OutputFormat: Sendable, Equatable, CustomStringConvertible {
    /// A JSON document valid against this JSON Schema (the subset `JSONSchemaCompiler` lists),
    /// with properties in the schema's order and at most a line break and an indent between tokens.
    case jsonSchema(String)
    /// Text matching this regular expression as a whole.
    case regularExpression(String)
    /// Exactly one of these strings (classification).
    case choices([String])

    public var description: String {
        switch self {
        case .jsonSchema: "a JSON Schema"
        case .regularExpression(let pattern): "the regular expression /\(pattern)/"
        case .choices(let choices): "one of \(choices.joined(separator: ", "))"
        }
    }
}

/// An output format compiled to a byte automaton, independent of any tokenizer; bind it to a
/// model's vocabulary with `TokenConstraint` (or `LanguageModel.constraint(for:)`).
public struct Grammar: Sendable, CustomStringConvertible {
    public let format: OutputFormat
    let automaton: ByteNFA
    /// Time the compile took.
    public let compileMilliseconds: Double

    /// Compiles `format`; an unsupported feature, an invalid pattern or a grammar no output can
    /// satisfy throws a one-line error naming it.
    public init(_ format: OutputFormat) throws(LanguageModelError) {
        let start = MonotonicClock.nanoseconds()
        self.format = format
        let pattern: BytePattern
        switch format {
        case .jsonSchema(let text):
            pattern = try JSONSchemaCompiler.compile(text)
        case .regularExpression(let text):
            pattern = try RegularExpressionParser.parse(text)
        case .choices(let choices):
            guard !choices.isEmpty else { throw LanguageModelError(.invalidInput, "a choice needs at least one option") }
            if let empty = choices.firstIndex(where: \.isEmpty) {
                throw LanguageModelError(.invalidInput, "choice \(empty + 1) is empty; every option needs some text")
            }
            pattern = .choice(choices.map { .text($0) })
        }
        automaton = try ByteNFA(pattern)
        guard automaton.distance[Int(automaton.start)] != ByteNFA.unreachable else {
            throw LanguageModelError(.invalidInput, "\(format) admits no output at all")
        }
        compileMilliseconds = MonotonicClock.milliseconds(since: start)
    }

    public var description: String { format.description }

    /// Fewest bytes of any output the grammar accepts.
    public var minimumBytes: Int { Int(automaton.distance[Int(automaton.start)]) }

    /// Automaton states (a measure of the grammar's size).
    public var stateCount: Int { automaton.stateCount }

    /// Whether `text` is a complete output of the grammar.
    public func accepts(_ text: String) -> Bool { automaton.accepts(Array(text.utf8), wholeMatch: true) }

    /// Whether `bytes` can be continued to a complete output (the reference a mask is checked against).
    public func acceptsPrefix(_ bytes: [UInt8]) -> Bool { automaton.accepts(bytes, wholeMatch: false) }

    /// The shortest bytes that make `bytes` a complete output (empty when it already is one); nil
    /// when no output starts with `bytes`. Ends an output early: cut it where it should end, then complete it.
    public func shortestCompletion(after bytes: [UInt8]) -> [UInt8]? { automaton.shortestCompletion(after: bytes) }

    /// Whether `bytes` are a complete output.
    public func acceptsWhole(_ bytes: [UInt8]) -> Bool { automaton.accepts(bytes, wholeMatch: true) }
}

extension Grammar {
    /// A direct simulation of the grammar's automaton over bytes — no deterministic tables, no
    /// trie, no cache: the reference `TokenConstraint`'s masks are checked against in tests.
    public struct ReferenceMatcher: Sendable {
        let automaton: ByteNFA
        /// The automaton states after the bytes fed so far (empty: no output starts so).
        public private(set) var states: [Int32]

        public init(_ grammar: Grammar) {
            automaton = grammar.automaton
            states = automaton.closure([automaton.start])
        }

        /// Feeds `bytes`; false when no output of the grammar starts with what was fed.
        @discardableResult
        public mutating func feed(_ bytes: [UInt8]) -> Bool {
            for byte in bytes {
                guard !states.isEmpty else { return false }
                var next: [Int32] = []
                for state in states {
                    for edge in automaton.edges[Int(state)] where edge.low <= byte && byte <= edge.high { next.append(edge.target) }
                }
                states = automaton.closure(next)
            }
            return !states.isEmpty
        }

        /// Whether what was fed is a complete output.
        public var isAccepting: Bool { states.contains(automaton.accept) }
        /// Whether what was fed can still be continued or completed.
        public var isLive: Bool { !states.isEmpty }
    }
}

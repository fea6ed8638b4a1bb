/// A set of bytes (256 bits), the label of one automaton step.
public struct ByteSet: Sendable, Equatable, Hashable {
    private var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)

    public init() {}

    public init(_ range: ClosedRange<UInt8>) { insert(range) }

    public init(_ bytes: [UInt8]) { for byte in bytes { insert(byte) } }

    public static let all = ByteSet(0...255)

    public mutating func insert(_ byte: UInt8) {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: words.0 |= bit
        case 1: words.1 |= bit
        case 2: words.2 |= bit
        default: words.3 |= bit
        }
    }

    public mutating func insert(_ range: ClosedRange<UInt8>) { for byte in range { insert(byte) } }

    public mutating func remove(_ byte: UInt8) {
        let bit = ~(UInt64(1) << UInt64(byte & 63))
        switch byte >> 6 {
        case 0: words.0 &= bit
        case 1: words.1 &= bit
        case 2: words.2 &= bit
        default: words.3 &= bit
        }
    }

    public func contains(_ byte: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(byte & 63)
        switch byte >> 6 {
        case 0: return words.0 & bit != 0
        case 1: return words.1 & bit != 0
        case 2: return words.2 & bit != 0
        default: return words.3 & bit != 0
        }
    }

    public var isEmpty: Bool { words.0 | words.1 | words.2 | words.3 == 0 }

    /// The set as runs of consecutive bytes, ascending.
    public var ranges: [ClosedRange<UInt8>] {
        var result: [ClosedRange<UInt8>] = []
        var start: Int?
        for byte in 0...256 {
            let inside = byte < 256 && contains(UInt8(byte))
            if inside, start == nil { start = byte }
            if !inside, let first = start {
                result.append(UInt8(first)...UInt8(byte - 1))
                start = nil
            }
        }
        return result
    }

    public static func == (left: ByteSet, right: ByteSet) -> Bool {
        left.words.0 == right.words.0 && left.words.1 == right.words.1 && left.words.2 == right.words.2 && left.words.3 == right.words.3
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
        hasher.combine(words.2)
        hasher.combine(words.3)
    }
}

/// A language over bytes, before it becomes an automaton: what the regular-expression parser and
/// the JSON Schema compiler both produce. Every supported grammar is regular (a schema without
/// references nests to a fixed depth), so one byte automaton runs them all.
public indirect enum BytePattern: Sendable, Equatable {
    /// The empty string.
    case empty
    /// Exactly these bytes.
    case literal([UInt8])
    /// One byte of the set.
    case byte(ByteSet)
    case sequence([BytePattern])
    /// Any one of the alternatives.
    case choice([BytePattern])
    /// `pattern` `minimum` to `maximum` times (nil: no bound).
    case repetition(BytePattern, minimum: Int, maximum: Int?)
    /// A JSON object `{…}` with these members in this order, each written as `"key":value`,
    /// separated by commas; optional members may be left out. `spacing` may stand after `{`,
    /// `:`, `,` and before `}` (`.empty`: compact).
    case object([ObjectMember], spacing: BytePattern)

    public struct ObjectMember: Sendable, Equatable {
        public var key: String
        public var value: BytePattern
        public var isRequired: Bool

        public init(key: String, value: BytePattern, isRequired: Bool) {
            self.key = key
            self.value = value
            self.isRequired = isRequired
        }
    }

    static func optional(_ pattern: BytePattern) -> BytePattern { .repetition(pattern, minimum: 0, maximum: 1) }

    static func text(_ string: String) -> BytePattern { .literal(Array(string.utf8)) }
}

/// A nondeterministic byte automaton (Thompson's construction) with one accepting state, and for
/// each state the fewest bytes that reach acceptance from it.
struct ByteNFA: Sendable {
    struct Edge: Sendable {
        var low: UInt8
        var high: UInt8
        var target: Int32
    }

    var edges: [[Edge]] = []
    var epsilons: [[Int32]] = []
    var start: Int32 = 0
    var accept: Int32 = 0
    /// Fewest bytes from each state to acceptance (`unreachable` when none).
    var distance: [UInt32] = []

    static let unreachable = UInt32.max
    /// The most states a grammar may compile to (bounded repetitions copy their pattern).
    static let maximumStates = 400_000

    var stateCount: Int { edges.count }

    /// Compiles `pattern`; throws when it would need more than `maximumStates` states.
    init(_ pattern: BytePattern) throws(LanguageModelError) {
        start = newState()
        let end = try add(pattern, from: start)
        accept = end
        computeDistances()
    }

    private mutating func newState() -> Int32 {
        edges.append([])
        epsilons.append([])
        return Int32(edges.count - 1)
    }

    private mutating func checkSize() throws(LanguageModelError) {
        if edges.count > Self.maximumStates {
            throw LanguageModelError(.invalidInput,
                "the grammar is too large (over \(Self.maximumStates) automaton states); lower maxLength, maxItems or {n,m} bounds")
        }
    }

    /// Adds `pattern` leaving `state`; returns the state where it ends. Never adds an edge into
    /// `state` (loops go through fresh states), so alternatives may share their entry.
    private mutating func add(_ pattern: BytePattern, from state: Int32) throws(LanguageModelError) -> Int32 {
        try checkSize()
        switch pattern {
        case .empty:
            return state
        case .literal(let bytes):
            var current = state
            for byte in bytes {
                let next = newState()
                edges[Int(current)].append(Edge(low: byte, high: byte, target: next))
                current = next
            }
            return current
        case .byte(let set):
            let next = newState()
            for range in set.ranges {
                edges[Int(state)].append(Edge(low: range.lowerBound, high: range.upperBound, target: next))
            }
            return next
        case .sequence(let parts):
            var current = state
            for part in parts { current = try add(part, from: current) }
            return current
        case .choice(let alternatives):
            let end = newState()
            for alternative in alternatives {
                // A fresh entry per alternative keeps a looping alternative from looping into another.
                let entry = newState()
                epsilons[Int(state)].append(entry)
                let exit = try add(alternative, from: entry)
                epsilons[Int(exit)].append(end)
            }
            return end
        case .repetition(let inner, let minimum, let maximum):
            var current = state
            for _ in 0..<minimum { current = try add(inner, from: current) }
            guard let maximum else {
                let loop = newState()
                epsilons[Int(current)].append(loop)
                let exit = try add(inner, from: loop)
                epsilons[Int(exit)].append(loop)
                return loop
            }
            guard maximum > minimum else { return current }
            let end = newState()
            epsilons[Int(current)].append(end)
            for _ in minimum..<maximum {
                let entry = newState()
                epsilons[Int(current)].append(entry)
                current = try add(inner, from: entry)
                epsilons[Int(current)].append(end)
            }
            return end
        case .object(let members, let spacing):
            let open = try add(spacing, from: try add(.literal([UInt8(ascii: "{")]), from: state))
            // after[i][written]: before member i, with or without a member written before it.
            var after = (0...members.count).map { _ in [newState(), newState()] }
            epsilons[Int(open)].append(after[0][0])
            for (index, member) in members.enumerated() {
                let entry = newState()
                epsilons[Int(after[index][0])].append(entry)
                let comma = newState()
                edges[Int(after[index][1])].append(Edge(low: UInt8(ascii: ","), high: UInt8(ascii: ","), target: comma))
                epsilons[Int(try add(spacing, from: comma))].append(entry)
                let key = try add(spacing, from: try add(.literal(JSONText.quoted(member.key) + [UInt8(ascii: ":")]), from: entry))
                let exit = try add(spacing, from: try add(member.value, from: key))
                epsilons[Int(exit)].append(after[index + 1][1])
                if !member.isRequired {
                    epsilons[Int(after[index][0])].append(after[index + 1][0])
                    epsilons[Int(after[index][1])].append(after[index + 1][1])
                }
            }
            let close = newState()
            for written in 0...1 {
                edges[Int(after[members.count][written])].append(Edge(low: UInt8(ascii: "}"), high: UInt8(ascii: "}"), target: close))
            }
            after.removeAll()
            return close
        }
    }

    /// Fewest bytes to acceptance from every state: a 0-1 breadth-first search backwards from it.
    private mutating func computeDistances() {
        var reverseEdges = [[Int32]](repeating: [], count: stateCount)
        var reverseEpsilons = [[Int32]](repeating: [], count: stateCount)
        for state in 0..<stateCount {
            for edge in edges[state] { reverseEdges[Int(edge.target)].append(Int32(state)) }
            for target in epsilons[state] { reverseEpsilons[Int(target)].append(Int32(state)) }
        }
        distance = [UInt32](repeating: Self.unreachable, count: stateCount)
        distance[Int(accept)] = 0
        var current = [accept]
        var level: UInt32 = 0
        while !current.isEmpty {
            // Close the level over ε-edges, then step one byte back.
            var index = 0
            while index < current.count {
                for source in reverseEpsilons[Int(current[index])] where distance[Int(source)] == Self.unreachable {
                    distance[Int(source)] = level
                    current.append(source)
                }
                index += 1
            }
            level += 1
            var next: [Int32] = []
            for state in current {
                for source in reverseEdges[Int(state)] where distance[Int(source)] == Self.unreachable {
                    distance[Int(source)] = level
                    next.append(source)
                }
            }
            current = next
        }
    }

    /// The ε-closure of `states`, keeping only states that matter to a deterministic state (those
    /// with byte edges, and the accepting one) and that can still reach acceptance; sorted.
    func closure(_ states: [Int32]) -> [Int32] {
        var seen = Set<Int32>()
        var stack = states
        var kept: [Int32] = []
        while let state = stack.popLast() {
            guard seen.insert(state).inserted, distance[Int(state)] != Self.unreachable else { continue }
            if state == accept || !edges[Int(state)].isEmpty { kept.append(state) }
            stack += epsilons[Int(state)]
        }
        return kept.sorted()
    }

    /// The fewest bytes that complete `bytes` to an accepted string (following the distances down
    /// to acceptance, the lowest byte at each step); nil when `bytes` is no prefix of one.
    func shortestCompletion(after bytes: [UInt8]) -> [UInt8]? {
        var states = self.states(after: bytes)
        if states.isEmpty { return nil }
        var completion: [UInt8] = []
        while !states.contains(accept) {
            guard let nearest = states.map({ distance[Int($0)] }).min(), nearest != Self.unreachable, nearest > 0 else { return nil }
            // A state at the least distance whose byte edge leads one step nearer (ε-ties may not have one).
            let steps = states.lazy.filter { self.distance[Int($0)] == nearest }.flatMap { self.edges[Int($0)] }
            guard let edge = steps.first(where: { self.distance[Int($0.target)] == nearest - 1 }) else { return nil }
            completion.append(edge.low)
            states = closure([edge.target])
        }
        return completion
    }

    /// The states the automaton can be in after reading `bytes` (ε-closed); empty when `bytes` is
    /// no prefix of an accepted string.
    func states(after bytes: [UInt8]) -> [Int32] {
        var states = closure([start])
        for byte in bytes {
            var next: [Int32] = []
            for state in states {
                for edge in edges[Int(state)] where edge.low <= byte && byte <= edge.high { next.append(edge.target) }
            }
            states = closure(next)
            if states.isEmpty { return [] }
        }
        return states
    }

    /// Whether the automaton accepts `bytes` as a whole (`wholeMatch`) or as a prefix of some
    /// accepted string — by direct simulation, the reference the deterministic tables are checked against.
    func accepts(_ bytes: [UInt8], wholeMatch: Bool) -> Bool {
        let states = self.states(after: bytes)
        if states.isEmpty { return false }
        return wholeMatch ? states.contains(accept) : !states.isEmpty
    }
}

/// JSON text helpers the grammar compilers share.
enum JSONText {
    /// `string` as a JSON string literal (quotes included), escaping what JSON requires.
    static func quoted(_ string: String) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "\"")]
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes += Array("\\\"".utf8)
            case UInt8(ascii: "\\"): bytes += Array("\\\\".utf8)
            case 0x0A: bytes += Array("\\n".utf8)
            case 0x0D: bytes += Array("\\r".utf8)
            case 0x09: bytes += Array("\\t".utf8)
            case 0..<0x20:
                let hex = String(byte, radix: 16)
                bytes += Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
        return bytes
    }
}

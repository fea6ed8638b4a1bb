import EmberCore
import Synchronization

/// The tokens a grammar allows in one state: their ids (ascending) and, for each, the fewest bytes
/// the output would still need after it to complete.
public struct TokenMask: Sendable {
    public let tokens: [Int32]
    public let remainingBytes: [UInt32]
    /// The largest of `remainingBytes` (0 when empty).
    public let maximumRemainingBytes: UInt32
}

/// A compiled grammar bound to a vocabulary: the logit mask for every state it reaches, computed
/// once per state by walking the token trie through a lazily built deterministic automaton, and
/// cached. Share one between requests with the same grammar and model (a compile per request is
/// cheap; the cache is what saves time). Put it in `SamplingParameters.constraint`.
///
/// `@unchecked Sendable` is not needed: all mutable state sits in a `Mutex`.
public final class TokenConstraint: Sendable, Equatable, CustomStringConvertible {
    public let grammar: Grammar
    public let trie: TokenByteTrie
    private let tables: Mutex<Tables>
    private let statistics = Mutex(MaskStatistics())

    /// A state of the deterministic automaton (a set of automaton states, ids from 0); `dead` when none.
    public typealias State = Int32
    public static let dead: State = -1

    /// The lazily built deterministic automaton and the masks of its states.
    struct Tables {
        var sets: [[Int32]] = []
        var index: [[Int32]: Int32] = [:]
        /// 256 entries per state: the next state, `dead`, or `unknown`.
        var transitions: [Int32] = []
        var accepting: [Bool] = []
        var remaining: [UInt32] = []
        var hasEdges: [Bool] = []
        var masks: [Int32: TokenMask] = [:]
        static let unknown: Int32 = -2
    }

    /// Counters of grammar work, for reports: masks walked and looked up (and their time), and the
    /// sampler's steps under this grammar — how many were settled by checking the leading tokens
    /// alone, how many tokens were checked, and the time the grammar added to all of them.
    public struct MaskStatistics: Sendable, Equatable {
        public var walks = 0
        public var walkNanoseconds: UInt64 = 0
        public var lookups = 0
        public var lookupNanoseconds: UInt64 = 0
        public var states = 0
        /// Tokens sampled under the grammar.
        public var steps = 0
        /// Steps whose token came from checking the leading tokens, without a mask.
        public var checkedSteps = 0
        /// Tokens checked one by one against the grammar.
        public var checks = 0
        /// Time the grammar added to the steps: checks, masks, and choosing among a mask's tokens.
        public var stepNanoseconds: UInt64 = 0

        /// The grammar's time per sampled token, in microseconds (0 before any step).
        public var microsecondsPerStep: Double { steps == 0 ? 0 : Double(stepNanoseconds) / Double(steps) / 1000 }
    }

    public init(grammar: Grammar, trie: TokenByteTrie) {
        self.grammar = grammar
        self.trie = trie
        var tables = Tables()
        _ = Self.state(for: grammar.automaton.closure([grammar.automaton.start]), in: &tables, grammar.automaton)
        self.tables = Mutex(tables)
    }

    public static func == (left: TokenConstraint, right: TokenConstraint) -> Bool { left === right }

    public var description: String { grammar.description }

    /// The state before any output.
    public var initialState: State { 0 }

    public var maskStatistics: MaskStatistics {
        let states = tables.withLock { $0.sets.count }
        var result = statistics.withLock { $0 }
        result.states = states
        return result
    }

    /// Whether the output may end in `state`.
    public func isAccepting(_ state: State) -> Bool {
        state >= 0 && tables.withLock { $0.accepting[Int(state)] }
    }

    /// Whether the output is complete in `state`: it may end there and nothing can follow.
    public func isComplete(_ state: State) -> Bool {
        state >= 0 && tables.withLock { $0.accepting[Int(state)] && !$0.hasEdges[Int(state)] }
    }

    /// Fewest bytes still needed to complete the output (`UInt32.max` when it cannot be).
    public func remainingBytes(_ state: State) -> UInt32 {
        state >= 0 ? tables.withLock { $0.remaining[Int(state)] } : ByteNFA.unreachable
    }

    /// The state after `bytes` (`dead` when the grammar does not allow them).
    public func advance(_ state: State, bytes: [UInt8]) -> State {
        guard state >= 0 else { return Self.dead }
        let automaton = grammar.automaton
        return tables.withLock { tables in
            var current = state
            for byte in bytes {
                current = Self.step(current, byte, &tables, automaton)
                if current < 0 { return Self.dead }
            }
            return current
        }
    }

    /// The state after token `id` (its bytes; end-of-generation tokens leave the state as it is).
    public func advance(_ state: State, token id: Int32) -> State {
        guard id >= 0, Int(id) < trie.tokenBytes.count else { return Self.dead }
        return advance(state, bytes: trie.tokenBytes[Int(id)])
    }

    /// Records one sampler step under this grammar (for `maskStatistics`).
    func recordStep(checks: Int, checked: Bool, nanoseconds: UInt64) {
        statistics.withLock {
            $0.steps += 1
            $0.checks += checks
            if checked { $0.checkedSteps += 1 }
            $0.stepNanoseconds += nanoseconds
        }
    }

    /// Whether `mask(state)` holds token `id` and, if so, the fewest bytes the output would still
    /// need after it (its `remainingBytes` entry) — found by stepping the token's bytes alone, so a
    /// sampler can check the token it prefers before building a mask. Exactly the mask's answer:
    /// end-of-generation ids where the output may end (0 bytes), never a token without bytes.
    public func remainingBytes(after id: Int32, in state: State) -> UInt32? {
        guard state >= 0, id >= 0, Int(id) < trie.tokenBytes.count else { return nil }
        if trie.endOfGenerationIDs.contains(id) { return isAccepting(state) ? 0 : nil }
        let bytes = trie.tokenBytes[Int(id)]
        guard !bytes.isEmpty else { return nil }
        let automaton = grammar.automaton
        return tables.withLock { tables -> UInt32? in
            var current = state
            // The trie holds at most `UInt16.max` bytes of a token.
            for byte in bytes.prefix(Int(UInt16.max)) {
                var next = tables.transitions[Int(current) * 256 + Int(byte)]
                if next == Tables.unknown { next = Self.step(current, byte, &tables, automaton) }
                guard next >= 0 else { return nil }
                current = next
            }
            return tables.remaining[Int(current)]
        }
    }

    /// The tokens allowed in `state` (end-of-generation ids among them where the output may end),
    /// from the cache or by walking the trie once.
    public func mask(_ state: State) -> TokenMask {
        let start = MonotonicClock.nanoseconds()
        let automaton = grammar.automaton
        var walked = false
        let mask = tables.withLock { tables -> TokenMask in
            guard state >= 0 else { return TokenMask(tokens: [], remainingBytes: [], maximumRemainingBytes: 0) }
            if let cached = tables.masks[state] { return cached }
            walked = true
            let mask = walk(state, &tables, automaton)
            tables.masks[state] = mask
            return mask
        }
        let elapsed = MonotonicClock.nanoseconds() - start
        statistics.withLock {
            if walked {
                $0.walks += 1
                $0.walkNanoseconds += elapsed
            } else {
                $0.lookups += 1
                $0.lookupNanoseconds += elapsed
            }
        }
        return mask
    }

    /// Depth-first over the trie's nodes in order, each stepping the automaton from its parent's
    /// state; a dead step skips the node's whole subtree.
    private func walk(_ state: State, _ tables: inout Tables, _ automaton: ByteNFA) -> TokenMask {
        var pairs: [(Int32, UInt32)] = []
        if tables.accepting[Int(state)] {
            for id in trie.endOfGenerationIDs { pairs.append((id, 0)) }
        }
        var stateAtDepth = [Int32](repeating: Self.dead, count: trie.maximumTokenBytes + 1)
        stateAtDepth[0] = state
        trie.nodeByte.withUnsafeBufferPointer { bytes in
        trie.nodeDepth.withUnsafeBufferPointer { depths in
        trie.subtreeEnd.withUnsafeBufferPointer { ends in
        trie.nodeTokenStart.withUnsafeBufferPointer { tokenStarts in
        trie.nodeTokens.withUnsafeBufferPointer { nodeTokens in
            var node = 0
            let count = bytes.count
            while node < count {
                let depth = Int(depths[node])
                let parent = stateAtDepth[depth - 1]
                var next = tables.transitions[Int(parent) * 256 + Int(bytes[node])]
                if next == Tables.unknown { next = Self.step(parent, bytes[node], &tables, automaton) }
                if next < 0 {
                    node = Int(ends[node])
                    continue
                }
                stateAtDepth[depth] = next
                let first = Int(tokenStarts[node]), last = Int(tokenStarts[node + 1])
                if first < last {
                    let remaining = tables.remaining[Int(next)]
                    for index in first..<last { pairs.append((nodeTokens[index], remaining)) }
                }
                node += 1
            }
        }
        }
        }
        }
        }
        pairs.sort { $0.0 < $1.0 }
        return TokenMask(tokens: pairs.map(\.0), remainingBytes: pairs.map(\.1),
                         maximumRemainingBytes: pairs.map(\.1).max() ?? 0)
    }

    /// Throws when no output of the grammar fits in `maxTokens` tokens: checked before generation.
    /// Within the bytes-per-token bound it always fits (a vocabulary has a token per byte);
    /// beyond it, a walk taking at each step the token that leaves the fewest bytes decides.
    public func checkCompletes(within maxTokens: Int) throws(LanguageModelError) {
        let bytes = grammar.minimumBytes
        if bytes <= maxTokens { return }
        var state = initialState
        var tokens = 0
        while remainingBytes(state) > 0, tokens <= maxTokens {
            let mask = mask(state)
            guard let best = mask.remainingBytes.indices.min(by: { mask.remainingBytes[$0] < mask.remainingBytes[$1] }) else { break }
            state = advance(state, token: mask.tokens[best])
            tokens += 1
        }
        if remainingBytes(state) > 0 || tokens > maxTokens {
            throw LanguageModelError(.outputIncomplete,
                "\(grammar) needs at least \(bytes) bytes (about \(tokens) tokens) but the token limit is \(maxTokens); raise it")
        }
    }

    /// One byte from `state`, computing and recording the transition if new.
    private static func step(_ state: Int32, _ byte: UInt8, _ tables: inout Tables, _ automaton: ByteNFA) -> Int32 {
        let slot = Int(state) * 256 + Int(byte)
        let known = tables.transitions[slot]
        if known != Tables.unknown { return known }
        var targets: [Int32] = []
        for member in tables.sets[Int(state)] {
            for edge in automaton.edges[Int(member)] where edge.low <= byte && byte <= edge.high { targets.append(edge.target) }
        }
        let next = targets.isEmpty ? dead : Self.state(for: automaton.closure(targets), in: &tables, automaton)
        tables.transitions[slot] = next
        return next
    }

    /// The deterministic state of an ε-closed set, added if new (`dead` for the empty set).
    private static func state(for set: [Int32], in tables: inout Tables, _ automaton: ByteNFA) -> Int32 {
        guard !set.isEmpty else { return dead }
        if let known = tables.index[set] { return known }
        let id = Int32(tables.sets.count)
        tables.sets.append(set)
        tables.index[set] = id
        tables.transitions += [Int32](repeating: Tables.unknown, count: 256)
        tables.accepting.append(set.contains(automaton.accept))
        tables.remaining.append(set.map { automaton.distance[Int($0)] }.min() ?? ByteNFA.unreachable)
        tables.hasEdges.append(set.contains { !automaton.edges[Int($0)].isEmpty })
        return id
    }
}

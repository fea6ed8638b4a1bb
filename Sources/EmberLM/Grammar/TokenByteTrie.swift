import EmberTokenizers

/// The vocabulary as byte strings in a trie, laid out for the mask walk: nodes in depth-first
/// order, each with its byte, its depth and where its subtree ends, so a walk that finds a prefix
/// dead skips every token under it in one jump. Built once per tokenizer (`LanguageModel.tokenByteTrie`).
///
/// Tokens with no bytes (control tokens, unused ids) are not in the trie: a grammar never allows
/// them. End-of-generation ids are kept apart and allowed only where the grammar may end.
public struct TokenByteTrie: Sendable {
    /// Each token's bytes, by id.
    public let tokenBytes: [[UInt8]]
    /// Ids that end a generation.
    public let endOfGenerationIDs: [Int32]
    /// Per node, in depth-first order: its byte, its depth (1 for a first byte) and the index
    /// after its last descendant.
    let nodeByte: [UInt8]
    let nodeDepth: [UInt16]
    let subtreeEnd: [Int32]
    /// Tokens ending at node `i`: `nodeTokens[nodeTokenStart[i]..<nodeTokenStart[i + 1]]`.
    let nodeTokenStart: [Int32]
    let nodeTokens: [Int32]
    /// The longest token, in bytes.
    public let maximumTokenBytes: Int

    public var vocabularySize: Int { tokenBytes.count }
    public var nodeCount: Int { nodeByte.count }

    /// A trie over the tokens of `tokenizer` (their bytes as the detokenizer writes them).
    public init(tokenizer: any Tokenizer) {
        let bytes = (0..<tokenizer.vocabularySize).map { tokenizer.pieceBytes(Int32($0), renderSpecial: false) }
        self.init(tokenBytes: bytes, endOfGenerationIDs: Array(tokenizer.endOfGenerationIDs).sorted())
    }

    public init(tokenBytes: [[UInt8]], endOfGenerationIDs: [Int32]) {
        self.tokenBytes = tokenBytes
        self.endOfGenerationIDs = endOfGenerationIDs
        let endOfGeneration = Set(endOfGenerationIDs)
        let order = tokenBytes.indices.filter { !tokenBytes[$0].isEmpty && !endOfGeneration.contains(Int32($0)) }
            .sorted { tokenBytes[$0].lexicographicallyPrecedes(tokenBytes[$1]) }
        var nodeByte: [UInt8] = []
        var nodeDepth: [UInt16] = []
        var subtreeEnd: [Int32] = []
        var nodeTokenStart: [Int32] = []
        var nodeTokens: [Int32] = []
        // The nodes on the path of the previous token, by depth - 1.
        var path: [Int] = []
        var previous: [UInt8] = []
        for id in order {
            let token = tokenBytes[id].prefix(Int(UInt16.max))
            var shared = 0
            while shared < min(previous.count, token.count), previous[shared] == token[token.startIndex + shared] { shared += 1 }
            // Close the subtrees the new token leaves.
            while path.count > shared { subtreeEnd[path.removeLast()] = Int32(nodeByte.count) }
            for depth in shared..<token.count {
                path.append(nodeByte.count)
                nodeByte.append(token[token.startIndex + depth])
                nodeDepth.append(UInt16(depth + 1))
                subtreeEnd.append(0)
                nodeTokenStart.append(Int32(nodeTokens.count))
            }
            // Sorted order puts a token right after its equals and before its extensions: it ends
            // at the newest node.
            nodeTokens.append(Int32(id))
            previous = Array(token)
        }
        while let node = path.popLast() { subtreeEnd[node] = Int32(nodeByte.count) }
        nodeTokenStart.append(Int32(nodeTokens.count))
        self.nodeByte = nodeByte
        self.nodeDepth = nodeDepth
        self.subtreeEnd = subtreeEnd
        self.nodeTokenStart = nodeTokenStart
        self.nodeTokens = nodeTokens
        maximumTokenBytes = tokenBytes.map(\.count).max() ?? 0
    }
}

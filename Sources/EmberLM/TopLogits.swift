/// The largest logits of a row, for inspection and comparison with llama.cpp.
public enum TopLogits {
    public struct Entry: Sendable, Equatable {
        public var id: Int32
        public var logit: Float
    }

    /// The `count` largest values, largest first; ties go to the lower id (as llama.cpp's reference does).
    /// `count` beyond the row gives the whole row; 0 or less gives none.
    public static func largest(_ logits: UnsafeBufferPointer<Float>, count requested: Int) -> [Entry] {
        let count = min(max(requested, 0), logits.count)
        guard count > 0 else { return [] }
        var best: [Entry] = []
        best.reserveCapacity(count + 1)
        for (index, logit) in logits.enumerated() {
            if best.count == count, let last = best.last, logit <= last.logit { continue }
            var position = best.count
            while position > 0, best[position - 1].logit < logit { position -= 1 }
            best.insert(Entry(id: Int32(index), logit: logit), at: position)
            if best.count > count { best.removeLast() }
        }
        return best
    }
}

import EmberLM
import Testing

@Suite("Decoding guards")
struct DecodingGuardsTests {
    /// Feeds `pieces` one by one; the text kept and why it stopped.
    private func run(_ watch: DecodingGuard, _ pieces: [String]) -> (String, GuardStop?) {
        var watch = watch
        for piece in pieces where watch.append(piece) { break }
        return (watch.keptText, watch.stop)
    }

    @Test func theFirstParagraphEndsIt() {
        let (kept, stop) = run(DecodingGuard(), ["\n\nThe car", " needs a service.", "\n", "\nSecond paragraph"])
        #expect(stop == .endOfParagraph)
        #expect(kept.trimmingCharacters(in: .whitespacesAndNewlines) == "The car needs a service.")
    }

    @Test func lineSentenceWordAndStringRules() {
        #expect(run(DecodingGuard(rules: StopRules(endOfLine: true)), [" One line.", "\nTwo"]).1 == .endOfLine)
        let sentences = run(DecodingGuard(rules: StopRules(maximumSentences: 2)), ["Version 3.5 is out. ", "It works. ", "A third."])
        #expect(sentences.1 == .sentenceLimit)
        #expect(sentences.0 == "Version 3.5 is out. It works.")
        let words = run(DecodingGuard(rules: StopRules(maximumWords: 3)), ["one two ", "three four five"])
        #expect(words.1 == .wordLimit)
        #expect(words.0 == "one two three ")
        let string = run(DecodingGuard(rules: StopRules(stopStrings: ["Note:"])), ["A summary. ", "Note: next"])
        #expect(string == ("A summary. ", .stopString))
        // Nothing stops a plain sentence.
        #expect(run(DecodingGuard(), ["A plain", " sentence."]).1 == nil)
    }

    @Test func aLoopingReplyStops() {
        let line = "The cache is a memory unit. "
        let (_, stop) = run(DecodingGuard(rules: StopRules(endOfParagraph: false)), Array(repeating: line, count: 5))
        #expect(stop == .loop)
        #expect(RepetitionCheck.isLooping("14 March 2016, 14 March 2016, 14 March 2016, 14 March 2016"))
        #expect(RepetitionCheck.isLooping("The note is a detail. The note is a detail."))
        #expect(!RepetitionCheck.isLooping("Lisbon on Friday, Belém on Saturday morning and Lisbon's castle at night."))
    }

    @Test func anEchoOfTheInstructionStops() {
        let instruction = "Summarize this note in one or two sentences. Reply with the summary only."
        let watch = DecodingGuard(echoSources: [instruction])
        let (_, stop) = run(watch, ["Summarize this note in one ", "or two sentences."])
        #expect(stop == .echo)
        #expect(run(watch, ["The note plans a trip in one week."]).1 == nil)
        #expect(EchoCheck.sharedRun("a b c d e f", "x c d e y") == 3)
        #expect(EchoCheck.echoes("Title: Groceries\nKey points: milk", scaffolding: [], labels: ["Key points:"]))
        #expect(!EchoCheck.echoes("Milk and eggs for the week.", scaffolding: [instruction], labels: ["Title:"]))
    }

    @Test func nGramBlockingNamesTheTokensThatWouldRepeat() {
        // 1 2 3 … 1 2: a 3-gram block forbids 3 (it would repeat "1 2 3").
        #expect(Sampler.blockedTokens([1, 2, 3, 4, 1, 2], n: 3) == [3])
        #expect(Sampler.blockedTokens([1, 2, 3, 1, 2, 5, 1, 2], n: 3) == [3, 5])
        #expect(Sampler.blockedTokens([1, 2, 3], n: 3).isEmpty)
        #expect(Sampler.blockedTokens([7, 8], n: 1) == [7, 8])
        #expect(Sampler.blockedTokens([1, 2, 1, 2], n: 0).isEmpty)
    }

    @Test func greedyDecodingWithBlockingNeverRepeatsAnNGram() {
        // Logits that always prefer token 0, then 1: greedy alone repeats 0 forever.
        var sampler = Sampler(parameters: SamplingParameters(temperature: 0, topK: 1, topP: 1, minP: 0, noRepeatNGramSize: 2))
        for token: Int32 in [5, 5, 5] { sampler.accept(token) }  // the prompt: never blocks the reply
        var reply: [Int32] = []
        let logits: [Float] = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
        for _ in 0..<8 {
            let token = logits.withUnsafeBufferPointer { sampler.sample($0) }
            reply.append(token)
            sampler.accept(token)
        }
        var pairs: Set<[Int32]> = []
        for index in 0..<(reply.count - 1) {
            #expect(pairs.insert([reply[index], reply[index + 1]]).inserted, "\(reply) repeats a pair")
        }
        #expect(reply.first == 0)
        // The same through the full chain (sampling at a temperature).
        var sampled = Sampler(parameters: SamplingParameters(temperature: 0.5, topK: 0, topP: 1, minP: 0, noRepeatNGramSize: 1, seed: 3))
        var seen: Set<Int32> = []
        for _ in 0..<6 {
            let token = logits.withUnsafeBufferPointer { sampled.sample($0) }
            #expect(seen.insert(token).inserted, "token \(token) repeated with 1-gram blocking")
            sampled.accept(token)
        }
    }

    @Test func blockingSizesAreValidated() {
        #expect(throws: LanguageModelError.self) { try SamplingParameters(noRepeatNGramSize: -1).validate() }
        #expect(throws: LanguageModelError.self) { try SamplingParameters(noRepeatNGramSize: 33).validate() }
        #expect(throws: Never.self) { try SamplingParameters(noRepeatNGramSize: 4).validate() }
    }
}

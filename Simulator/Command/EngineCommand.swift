import ArgumentParser
import Ember
import EmberCore
import Foundation

/// `ember engine`: the engine an app embeds, driven as an app drives it — a chat turn and
/// background summaries at the same time, every session planned within the memory budget.
struct EngineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Run the embeddable Engine: a chat turn and background summaries at once, within a memory budget.",
        discussion: """
            The engine is planned for --requests sessions (each its own KV cache and scratch, one shared \
            thread pool) and loaded as planned; then one chat turn and --requests − 1 note summaries run \
            concurrently. Prints the plan, each request's figures and the process's peak resident set.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(name: .long, help: "Requests that run at once: one chat turn, the rest background summaries (1…8).")
    var requests = 2

    @Option(name: .long, help: "Context length in tokens (a budget may shorten it).")
    var context = 2048

    @Option(name: .long, help: "The chat message.")
    var prompt = "Write a short story about a lighthouse keeper and a storm."

    @Option(name: .long, help: "Longest chat reply, in tokens.")
    var maxTokens = 64

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Flag(name: .long, help: "Log what the engine, its session pool and its scheduler do, on standard error.")
    var verbose = false

    func validate() throws {
        guard (1...8).contains(requests) else {
            throw ValidationError("--requests must be between 1 and 8, not \(requests).")
        }
        guard (16...MemoryPlan.maximumContext).contains(context) else {
            throw ValidationError("--context must be between 16 and \(MemoryPlan.maximumContext) tokens, not \(context).")
        }
        guard (1...4096).contains(maxTokens) else {
            throw ValidationError("--max-tokens must be between 1 and 4096, not \(maxTokens).")
        }
    }

    /// What one request did.
    struct Outcome: Sendable {
        var kind: String
        var generatedTokens: Int
        var seconds: Double
        var text: String
    }

    func run() async throws {
        var configuration = try modelOptions.engineConfiguration(context: context, contextAdjustable: true)
        configuration.concurrentRequests = requests
        let engine = try Engine(configuration, threadPriority: SystemThreadPriority(), logger: commandLogger(verbose: verbose))
        let prompt = self.prompt, maxTokens = self.maxTokens
        let start = MonotonicClock.nanoseconds()
        func seconds() -> Double { Double(MonotonicClock.nanoseconds() - start) / 1e9 }
        let outcomes = try await withThrowingTaskGroup(of: (Int, Outcome).self) { group in
            group.addTask {
                let chat = engine.chat(instructions: "You are a helpful assistant.",
                                       options: ChatOptions(maxTokens: maxTokens, sampling: .greedy))
                let reply = try await chat.respond(to: prompt)
                return (0, Outcome(kind: "chat", generatedTokens: chat.lastStatistics?.generatedTokens ?? 0,
                                   seconds: seconds(), text: reply))
            }
            for index in 1..<requests {
                group.addTask {
                    let note = EngineCommand.notes[(index - 1) % EngineCommand.notes.count]
                    let result = try await engine.summarize(title: note.title, text: note.text)
                    return (index, Outcome(kind: "summary", generatedTokens: result.generatedTokens, seconds: seconds(),
                                           text: result.summary))
                }
            }
            var outcomes: [(Int, Outcome)] = []
            for try await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }.map(\.1)
        }
        let plan = engine.plan
        let peak = ProcessMemory.peakResidentBytes()
        if json {
            let items = outcomes.map {
                "{\"kind\":\(JSONText.string($0.kind)),\"generated_tokens\":\($0.generatedTokens),"
                    + "\"seconds\":\(JSONText.number($0.seconds)),\"text\":\(JSONText.string($0.text))}"
            }
            print("{\"planned_bytes\":\(plan.totalBytes),\"budget_bytes\":\(plan.budgetBytes.map(String.init) ?? "null"),"
                  + "\"sessions\":\(plan.sessions),\"kv_cache_bytes\":\(plan.keyValueCacheBytes),\"scratch_bytes\":\(plan.scratchBytes),"
                  + "\"context\":\(plan.context),\"kv_type\":\(JSONText.string(plan.keyValueType.rawValue)),"
                  + "\"threads\":\(engine.sessions.threadCount),\"peak_rss_bytes\":\(peak),\"requests\":[\(items.joined(separator: ","))]}")
        } else {
            print("plan: \(ByteCount.format(plan.totalBytes))\(plan.budgetBytes.map { " within \(ByteCount.format($0))" } ?? "") for \(plan.sessions) sessions "
                  + "(context \(plan.context), \(plan.keyValueType.rawValue) KV cache \(ByteCount.format(plan.keyValueCacheBytes)), "
                  + "scratch \(ByteCount.format(plan.scratchBytes)) with one pool of \(engine.sessions.threadCount) threads)")
            for outcome in outcomes {
                print("\(outcome.kind): \(outcome.generatedTokens) tokens, done at \(String(format: "%.2f", outcome.seconds)) s: "
                      + outcome.text.replacingOccurrences(of: "\n", with: " "))
            }
            print("peak RSS: \(ByteCount.format(peak))")
        }
    }

    /// Notes to summarize (written for this command).
    static let notes: [(title: String, text: String)] = [
        ("Team sync", """
            We met on Tuesday to review the launch plan. The beta moves by one week because the payment \
            screen still fails on older phones. Maria owns the fix and will report on Friday. Support asked \
            for a short guide to the new settings page before the beta starts.
            """),
        ("Weekend trip", """
            Train to the coast leaves at 8:40 on Saturday from platform 4. The hotel is a ten minute walk \
            from the station; check-in from 3 pm. Pack rain jackets, the museum tickets are booked for \
            Sunday at 11, and we return on the 17:05 train.
            """),
        ("Soup recipe", """
            Soften two onions slowly for twenty minutes, add three carrots and a potato, cover with a litre \
            of stock and simmer for half an hour. Blend, season with salt, pepper and a little nutmeg, and \
            serve with rye bread.
            """),
    ]
}

/// The logger a command hands the library: standard error at debug level with `--verbose`, else
/// warnings and errors only. The command picks the handler; the library modules only log.
func commandLogger(verbose: Bool) -> Logger {
    var logger = Logger(label: "ember", factory: { StreamLogHandler.standardError(label: $0) })
    logger.logLevel = verbose ? .debug : .warning
    return logger
}

import EmberCore

/// The lead baseline: a note's first words, as they stand. Any summarizer that cannot beat it
/// is not worth its energy.
public enum LeadBaseline: Sendable {
    /// The first `words` whitespace-separated words of `text`.
    public static func summary(_ text: String, words: Int = 40) -> String {
        text.split(whereSeparator: \.isWhitespace).prefix(max(0, words)).joined(separator: " ")
    }
}

/// One summary's figures, as `SummaryScores` averages them.
public struct SummaryMeasurement: Sendable, Equatable {
    public var rouge: ROUGEScores
    /// Share of the summary's content words, numbers and names its note supports (0…1).
    public var faithfulness: Double
    public var loops: Bool
    public var echoes: Bool
    /// The summary fell back to the extract.
    public var fellBack: Bool
    public var words: Int
    /// Host seconds for the summary.
    public var seconds: Double
    /// Simulated seconds, joules (whole phone) and battery percent, when charged on a profile.
    public var simulatedSeconds: Double
    public var joules: Double
    public var batteryPercent: Double

    public init(rouge: ROUGEScores, faithfulness: Double, loops: Bool, echoes: Bool, fellBack: Bool = false, words: Int,
                seconds: Double, simulatedSeconds: Double = 0, joules: Double = 0, batteryPercent: Double = 0) {
        self.rouge = rouge
        self.faithfulness = faithfulness
        self.loops = loops
        self.echoes = echoes
        self.fellBack = fellBack
        self.words = words
        self.seconds = seconds
        self.simulatedSeconds = simulatedSeconds
        self.joules = joules
        self.batteryPercent = batteryPercent
    }
}

/// Means over the summaries of one method: the row of the evaluation table.
public struct SummaryScores: Sendable, Equatable {
    public private(set) var count = 0
    public private(set) var rouge1 = 0.0
    public private(set) var rouge2 = 0.0
    public private(set) var rougeL = 0.0
    public private(set) var faithfulness = 0.0
    public private(set) var loopRate = 0.0
    public private(set) var echoRate = 0.0
    public private(set) var fallbackRate = 0.0
    public private(set) var meanWords = 0.0
    public private(set) var meanSeconds = 0.0
    public private(set) var meanSimulatedSeconds = 0.0
    public private(set) var meanJoules = 0.0
    public private(set) var meanBatteryPercent = 0.0
    /// The worst faithfulness of any one summary (1 with none).
    public private(set) var minimumFaithfulness = 1.0

    public init() {}

    public mutating func add(_ measurement: SummaryMeasurement) {
        let previous = Double(count)
        count += 1
        let total = Double(count)
        func mean(_ value: Double, _ next: Double) -> Double { (value * previous + next) / total }
        rouge1 = mean(rouge1, measurement.rouge.rouge1.f1)
        rouge2 = mean(rouge2, measurement.rouge.rouge2.f1)
        rougeL = mean(rougeL, measurement.rouge.rougeL.f1)
        faithfulness = mean(faithfulness, measurement.faithfulness)
        loopRate = mean(loopRate, measurement.loops ? 1 : 0)
        echoRate = mean(echoRate, measurement.echoes ? 1 : 0)
        fallbackRate = mean(fallbackRate, measurement.fellBack ? 1 : 0)
        meanWords = mean(meanWords, Double(measurement.words))
        meanSeconds = mean(meanSeconds, measurement.seconds)
        meanSimulatedSeconds = mean(meanSimulatedSeconds, measurement.simulatedSeconds)
        meanJoules = mean(meanJoules, measurement.joules)
        meanBatteryPercent = mean(meanBatteryPercent, measurement.batteryPercent)
        minimumFaithfulness = min(minimumFaithfulness, measurement.faithfulness)
    }
}

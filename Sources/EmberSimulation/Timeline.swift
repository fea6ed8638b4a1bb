import EmberCore
import EmberDevice

/// The simulation sampled at a fixed interval: what the report plots and the CSV holds.
public struct TimelineSample: Sendable, Equatable {
    public var time: Double
    public var skinCelsius: Double
    public var socCelsius: Double
    public var batteryPercent: Double
    public var batteryVolts: Double
    /// Average whole-phone power over the interval.
    public var powerWatts: Double
    public var socWatts: Double
    /// Tokens generated in the interval per second.
    public var tokensPerSecond: Double
    public var status: ThermalStatus
    public var throttleLevel: Int
    public var headroom: Double
    public var pluggedIn: Bool
    public var screenOn: Bool
    /// Fraction of the interval the CPU was busy with model work.
    public var busyFraction: Double
}

/// A marked moment: a request arriving, its first token, its end, or a scenario event.
public struct TimelineMark: Sendable, Equatable {
    public enum Kind: String, Sendable { case arrival, firstToken = "first_token", finished, missedDeadline = "missed_deadline", event }
    public var time: Double
    public var kind: Kind
    public var label: String
}

/// Accumulates phone segments and tokens into fixed-interval samples.
public final class TimelineRecorder {
    public let interval: Double
    public private(set) var samples: [TimelineSample] = []
    public private(set) var marks: [TimelineMark] = []
    // Totals over the whole run.
    public private(set) var energyJoules = 0.0
    public private(set) var secondsAtOrAboveSevere = 0.0
    public private(set) var throttledSeconds = 0.0
    public private(set) var peakSkinCelsius = -Double.infinity
    public private(set) var peakSocCelsius = -Double.infinity
    /// Stretches of time at or above CRITICAL, in order (adjacent ones merged).
    public private(set) var criticalSpans: [ClosedRange<Double>] = []

    private var binStart = 0.0
    private var binEnergy = 0.0
    private var binSocEnergy = 0.0
    private var binBusy = 0.0
    private var binTokens = 0
    private var last: PhoneSegment?
    /// Supplies the parts of a sample the segment does not carry.
    var context: () -> (headroom: Double, pluggedIn: Bool, screenOn: Bool) = { (0, false, true) }

    public init(interval: Double = 1) { self.interval = interval }

    func record(_ segment: PhoneSegment) {
        var start = segment.start
        while start < segment.end - 1e-12 {
            let binEnd = binStart + interval
            let end = min(segment.end, binEnd)
            let span = end - start
            binEnergy += segment.totalWatts * span
            binSocEnergy += segment.socWatts * span
            if segment.busy { binBusy += span }
            if segment.status >= .severe { secondsAtOrAboveSevere += span }
            if segment.level > 0 { throttledSeconds += span }
            energyJoules += segment.totalWatts * span
            start = end
            last = segment
            if end >= binEnd - 1e-12 { closeBin() }
        }
        if segment.status >= .critical {
            if let last = criticalSpans.last, last.upperBound >= segment.start - 1e-9 {
                criticalSpans[criticalSpans.count - 1] = last.lowerBound...segment.end
            } else {
                criticalSpans.append(segment.start...segment.end)
            }
        }
        peakSkinCelsius = max(peakSkinCelsius, segment.skinCelsius)
        peakSocCelsius = max(peakSocCelsius, segment.socCelsius)
    }

    func addToken() { binTokens += 1 }

    func mark(_ time: Double, _ kind: TimelineMark.Kind, _ label: String) {
        marks.append(TimelineMark(time: time, kind: kind, label: label))
    }

    private func closeBin() {
        guard let last else { return }
        let extra = context()
        samples.append(TimelineSample(
            time: binStart + interval, skinCelsius: last.skinCelsius, socCelsius: last.socCelsius,
            batteryPercent: last.batteryPercent, batteryVolts: last.batteryVolts,
            powerWatts: binEnergy / interval, socWatts: binSocEnergy / interval,
            tokensPerSecond: Double(binTokens) / interval, status: last.status, throttleLevel: last.level,
            headroom: extra.headroom, pluggedIn: extra.pluggedIn, screenOn: extra.screenOn,
            busyFraction: binBusy / interval))
        binStart += interval
        binEnergy = 0
        binSocEnergy = 0
        binBusy = 0
        binTokens = 0
    }

    /// Whole-phone energy from the start to `end`, from the closed samples (the whole run's when
    /// `end` is past the last one).
    public func energyJoules(through end: Double) -> Double {
        guard let last = samples.last, end < last.time else { return energyJoules }
        var joules = 0.0
        for sample in samples {
            let start = sample.time - interval
            if start >= end { break }
            joules += sample.powerWatts * (min(sample.time, end) - start)
        }
        return joules
    }

    /// The samples as CSV, header first.
    public func csv() -> String {
        var text = "t_s,skin_c,soc_c,battery_pct,battery_v,power_w,soc_power_w,tok_s,thermal_status,throttle_level,headroom,plugged_in,screen_on,busy_fraction\n"
        for sample in samples {
            text += [
                format(sample.time, 1), format(sample.skinCelsius, 3), format(sample.socCelsius, 3),
                format(sample.batteryPercent, 4), format(sample.batteryVolts, 4), format(sample.powerWatts, 4),
                format(sample.socWatts, 4), format(sample.tokensPerSecond, 2), sample.status.name,
                String(sample.throttleLevel), format(sample.headroom, 4), sample.pluggedIn ? "1" : "0",
                sample.screenOn ? "1" : "0", format(sample.busyFraction, 3),
            ].joined(separator: ",") + "\n"
        }
        return text
    }
}

/// A number with `digits` decimals, no locale.
func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "0" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    var rounded = (value * scale).rounded() / scale
    if rounded == 0 { rounded = 0 }  // no "-0"
    var text = String(rounded)
    if text.hasSuffix(".0") { text.removeLast(2) }
    if text.contains("e") { text = String(format: "%.\(digits)f", rounded) }
    return text
}

import Foundation

import EmberCore
@testable import EmberDevice
import Foundation
import Testing

@Suite struct DeviceModelTests {
    @Test(arguments: DeviceSupport.shippedProfiles)
    func shippedProfilesLoadAndCiteEveryNumber(_ name: String) throws {
        let profile = try DeviceSupport.profile(name)
        #expect(profile.name == name)
        // Every numeric leaf path must be covered by a source key (itself or a parent section).
        let data = try Data(contentsOf: URL(fileURLWithPath: DeviceSupport.profilePath(name)))
        let object = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        var uncited: [String] = []
        func walk(_ value: Any, _ path: String) {
            if let dictionary = value as? [String: Any] {
                for (key, child) in dictionary where key != "sources" { walk(child, path.isEmpty ? key : "\(path).\(key)") }
            } else if let array = value as? [Any] {
                for child in array { walk(child, path) }
            } else if value is NSNumber {
                var prefix = path
                var cited = false
                while !prefix.isEmpty {
                    if profile.sources[prefix] != nil { cited = true; break }
                    prefix = prefix.contains(".") ? String(prefix[..<prefix.lastIndex(of: ".")!]) : ""
                }
                if !cited { uncited.append(path) }
            }
        }
        walk(object, "")
        #expect(Set(uncited).isEmpty, "\(name): numbers without a source: \(Set(uncited).sorted())")
    }

    @Test func thermalNetworkReachesItsAnalyticSteadyState() throws {
        let profile = try DeviceSupport.profile("flagship-android")
        var network = ThermalNetwork(thermal: profile.thermal, socCelsius: 30, skinCelsius: 30)
        for _ in 0..<20_000 { network.advance(seconds: 1, socWatts: 2, skinWatts: 1, ambientCelsius: 25) }
        let steady = network.steadyState(socWatts: 2, skinWatts: 1, ambientCelsius: 25)
        #expect(abs(network.skinCelsius - steady.skin) < 0.01)
        #expect(abs(network.socCelsius - steady.soc) < 0.01)
        #expect(abs(steady.skin - (25 + 3 * 5)) < 1e-9)
    }

    @Test func batteryCurrentDeliversTheRequestedPower() throws {
        let profile = try DeviceSupport.profile("flagship-android")
        var battery = BatteryModel(profile: profile.battery, stateOfChargePercent: 55)
        #expect(abs(battery.openCircuitVolts - (3.839 + 0.5 * (3.919 - 3.839))) < 1e-9)
        battery.advance(seconds: 1, loadWatts: 6)
        #expect(abs(battery.terminalVolts * battery.currentAmps - 6) < 1e-6)
        #expect(battery.terminalVolts < battery.openCircuitVolts)
        // Charging raises the state of charge and puts the charger's losses into the case.
        var charging = BatteryModel(profile: profile.battery, stateOfChargePercent: 50)
        let heat = charging.advance(seconds: 600, loadWatts: 1, chargerRatedWatts: 25)
        #expect(charging.stateOfChargePercent > 50)
        #expect(abs(heat - 25 * 0.1) < 1e-9)
        // An empty cell browns out.
        var empty = BatteryModel(profile: profile.battery, stateOfChargePercent: 0.5)
        for _ in 0..<600 where !empty.brownedOut { empty.advance(seconds: 1, loadWatts: 8) }
        #expect(empty.brownedOut)
    }

    @Test func governorCutsTheBudgetAsTheSkinWarms() throws {
        let profile = try DeviceSupport.profile("flagship-android")
        var governor = ThermalGovernor(profile: profile)
        governor.poll(skinCelsius: 30, socCelsius: 50)
        #expect(governor.budgetWatts == .infinity)
        governor.poll(skinCelsius: 37, socCelsius: 50)
        let atSwitchOn = governor.budgetWatts
        #expect(abs(atSwitchOn - 3 * profile.thermal.governor.sustainablePowerWatts) < 0.05)
        var cooler = ThermalGovernor(profile: profile)
        cooler.poll(skinCelsius: 41, socCelsius: 50)
        #expect(abs(cooler.budgetWatts - profile.thermal.governor.sustainablePowerWatts) < 1e-9)
        var hot = ThermalGovernor(profile: profile)
        hot.poll(skinCelsius: 43, socCelsius: 50)
        #expect(hot.budgetWatts < profile.thermal.governor.sustainablePowerWatts)
        // The junction guard removes one level per poll above the limit while rising.
        var junction = ThermalGovernor(profile: profile)
        junction.poll(skinCelsius: 30, socCelsius: 96)
        junction.poll(skinCelsius: 30, socCelsius: 97)
        #expect(junction.junctionCap == 2)
        let processor = ProcessorModel(profile: profile)
        #expect(junction.level(processor: processor) { _ in 0 } == 2)
    }

    @Test func processorIsMemoryBoundForDecodeAndComputeBoundForPrefill() throws {
        let profile = try DeviceSupport.profile("flagship-android")
        let processor = ProcessorModel(profile: profile)
        let workload = DeviceSupport.oneBillionQ4
        let decode = workload.decodeCost(position: 100)
        let bandwidthSeconds = decode.bytes / processor.bandwidth(level: 0, threads: 4)
        #expect(abs(processor.seconds(for: decode, level: 0, threads: 4) - bandwidthSeconds) < 1e-12)
        let prefill = workload.prefillCost(tokens: 256, position: 0)
        let computeSeconds = prefill.flops / processor.computeRate(level: 0, threads: 4)
        #expect(abs(processor.seconds(for: prefill, level: 0, threads: 4) - computeSeconds) < 1e-12)
        // Deeper levels are slower and cheaper.
        for level in 1...processor.deepestLevel {
            #expect(processor.seconds(for: decode, level: level, threads: 4) > processor.seconds(for: decode, level: level - 1, threads: 4))
            #expect(processor.busyCoreWatts(level: level, threads: 4, socCelsius: 50) < processor.busyCoreWatts(level: level - 1, threads: 4, socCelsius: 50))
        }
    }

    @Test func workStillRunningAtTheStopTimeEndsThere() throws {
        var phone = SimulatedPhone(profile: try DeviceSupport.profile("flagship-android"), ambientCelsius: 25, socCelsius: 30,
                                   skinCelsius: 30, batteryPercent: 80)
        let prompt = DeviceSupport.oneBillionQ4.prefillCost(tokens: 4096, position: 0)
        var whole = phone
        let full = whole.perform(prompt, threads: 4)
        #expect(full.finished && full.seconds > 2)
        let cut = phone.perform(prompt, threads: 4, until: 1.5)
        #expect(!cut.finished)
        #expect(abs(phone.time - 1.5) < 1e-9)
        #expect(abs(cut.seconds - 1.5) < 1e-9 && cut.socJoules < full.socJoules)
        let none = phone.perform(prompt, threads: 4, until: 1.0)
        #expect(!none.finished && none.seconds == 0 && phone.time == 1.5)
    }

    @Test func powerSaveCapsTheClocks() throws {
        let profile = try DeviceSupport.profile("flagship-android")
        var phone = SimulatedPhone(profile: profile, ambientCelsius: 25, socCelsius: 30, skinCelsius: 30, batteryPercent: 10)
        #expect(phone.isPowerSaveMode)
        phone.perform(DeviceSupport.oneBillionQ4.decodeCost(position: 10), threads: 4)
        #expect(phone.processor.leadFrequency(level: phone.level) <= 0.7 * phone.processor.leadFrequency(level: 0))
        phone.pluggedIn = true
        #expect(!phone.isPowerSaveMode)
    }
}

/// Charging by battery temperature (JEITA-style windows) and the phone's idle twin.
@Suite struct ChargingAndEnvironmentTests {
    @Test func chargingWindowsFollowTheBatteryTemperature() {
        #expect(ChargingWindow.at(celsius: -5).currentFraction == 0)
        #expect(ChargingWindow.at(celsius: 5) == ChargingWindow(currentFraction: 0.5, regulationVolts: 4.1))
        #expect(ChargingWindow.at(celsius: 25).currentFraction == 1)
        #expect(ChargingWindow.at(celsius: 47) == ChargingWindow(currentFraction: 0.5, regulationVolts: 4.15))
        #expect(ChargingWindow.at(celsius: 50).currentFraction == 0)
    }

    @Test func theChargerDeliversWhatTheCellAcceptsAtItsTemperature() throws {
        let profile = try DeviceSupport.profile("flagship-android")
        let half = BatteryModel(profile: profile.battery, stateOfChargePercent: 40)
        #expect(half.chargerInputWatts(ratedWatts: 20, batteryCelsius: 25) == 20)
        #expect(half.chargerInputWatts(ratedWatts: 20, batteryCelsius: 5) == 10)
        #expect(half.chargerInputWatts(ratedWatts: 20, batteryCelsius: 47) == 10)
        #expect(half.chargerInputWatts(ratedWatts: 20, batteryCelsius: 55) == 0)
        #expect(half.chargerInputWatts(ratedWatts: 20, batteryCelsius: -2) == 0)
        // Warm: charging ends at the lowered regulation voltage (4.15 V is about 90 % on this curve).
        let nearlyFull = BatteryModel(profile: profile.battery, stateOfChargePercent: 97)
        #expect(nearlyFull.openCircuitVolts >= 4.15)
        #expect(nearlyFull.chargerInputWatts(ratedWatts: 20, batteryCelsius: 47) == 0)
        #expect(nearlyFull.chargerInputWatts(ratedWatts: 20, batteryCelsius: 25) > 0)
    }

    @Test func theBatteryCountsWhatItDeliveredNotWhatTheChargerPutBack() throws {
        let profile = try DeviceSupport.profile("flagship-android")
        var battery = BatteryModel(profile: profile.battery, stateOfChargePercent: 50)
        battery.advance(seconds: 600, loadWatts: 3)
        let drawn = battery.dischargedPercent
        #expect(drawn > 0)
        #expect(abs(drawn - (50 - battery.stateOfChargePercent)) < 1e-9)
        // Charging raises the charge but takes nothing off what was drawn.
        battery.advance(seconds: 600, loadWatts: 1, chargerRatedWatts: 25)
        #expect(battery.stateOfChargePercent > 50 - drawn)
        #expect(battery.dischargedPercent == drawn)
    }

    @Test func aHotCarStopsChargingAndTheChargerHeatsThePhone() throws {
        let profile = try DeviceSupport.profile("low-end-android")
        // A car mount on a hot day: 52 °C skin, charging, screen on, the app idle.
        var hot = SimulatedPhone(profile: profile, ambientCelsius: 50, socCelsius: 53, skinCelsius: 52, batteryPercent: 55,
                                 pluggedIn: true)
        hot.idle(seconds: 600)
        #expect(hot.batteryPercent <= 55, "no charging above 50 °C: \(hot.batteryPercent) %")
        // Indoors the same phone charges, and the charger's losses warm it above the unplugged phone.
        var indoors = SimulatedPhone(profile: profile, ambientCelsius: 22, socCelsius: 30, skinCelsius: 30, batteryPercent: 55,
                                     pluggedIn: true)
        var unplugged = SimulatedPhone(profile: profile, ambientCelsius: 22, socCelsius: 30, skinCelsius: 30, batteryPercent: 55)
        indoors.idle(seconds: 600)
        unplugged.idle(seconds: 600)
        #expect(indoors.batteryPercent > 56)
        #expect(indoors.thermal.skinCelsius > unplugged.thermal.skinCelsius)
    }

    @Test func theIdleTwinSeparatesTheAppsHeatFromTheEnvironments() throws {
        let profile = try DeviceSupport.profile("flagship-android")
        var phone = SimulatedPhone(profile: profile, ambientCelsius: 30, socCelsius: 32, skinCelsius: 32, batteryPercent: 80)
        phone.idle(seconds: 60)
        #expect(abs(phone.thermalHeadroom(forecastSeconds: 0) - phone.environmentHeadroom()) < 1e-9)
        for position in 0..<2000 { phone.perform(DeviceSupport.oneBillionQ4.decodeCost(position: position), threads: 4) }
        #expect(phone.thermalHeadroom(forecastSeconds: 0) > phone.environmentHeadroom() + 0.05)
        #expect(phone.environmentStatus <= phone.thermalStatus)
    }
}

@Suite struct ProfileErrorTests {
    func write(_ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "ember-profile-\(UUID().uuidString).json"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func flagshipText() throws -> String {
        try String(contentsOfFile: DeviceSupport.profilePath("flagship-android"), encoding: .utf8)
    }

    /// `field` nil: any field.
    func expectError(_ text: String, field: String?, reasonContains: String) throws {
        let path = try write(text)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            _ = try DeviceProfile.load(path: path)
        } throws: { error in
            guard let error = error as? DeviceError else { return false }
            let line = error.description
            return (field == nil || error.field == field) && line.contains(path) && line.contains(reasonContains) && !line.contains("\n")
        }
    }

    @Test func invalidJSON() throws {
        try expectError("{\"name\": ", field: "", reasonContains: "not valid JSON")
    }

    @Test func missingField() throws {
        let text = try flagshipText().replacingOccurrences(of: "\"capacity_mah\": 5000,", with: "")
        try expectError(text, field: "battery.capacity_mah", reasonContains: "missing")
    }

    @Test func wrongUnitsAsString() throws {
        let text = try flagshipText().replacingOccurrences(of: "\"capacity_mah\": 5000", with: "\"capacity_mah\": \"5000 mAh\"")
        try expectError(text, field: "battery.capacity_mah", reasonContains: "expected a number")
    }

    @Test func negativeCapacity() throws {
        let text = try flagshipText().replacingOccurrences(of: "\"capacity_mah\": 5000", with: "\"capacity_mah\": -5000")
        try expectError(text, field: "battery.capacity_mah", reasonContains: "must not be negative")
    }

    @Test func kelvinInsteadOfCelsius() throws {
        let text = try flagshipText().replacingOccurrences(of: "\"soc_limit_c\": 95", with: "\"soc_limit_c\": 368")
        try expectError(text, field: "thermal.soc_limit_c", reasonContains: "out of range")
    }

    @Test func unknownThermalStatus() throws {
        let text = try flagshipText().replacingOccurrences(of: "\"light\": 39", with: "\"warm\": 39")
        try expectError(text, field: "thermal.status_thresholds_c.warm", reasonContains: "not a android thermal status")
    }

    @Test func missingFile() throws {
        #expect(throws: DeviceError.self) { _ = try DeviceProfile.load(path: "/nonexistent/profile.json") }
    }

    /// The flagship profile with `change` applied to its parsed JSON (keys come back in another order).
    func flagshipChanged(_ change: (inout [String: Any]) -> Void) throws -> String {
        var object = try #require(try JSONSerialization.jsonObject(with: Data(flagshipText().utf8)) as? [String: Any])
        change(&object)
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    @Test func unknownTopLevelField() throws {
        let text = try flagshipText().replacingOccurrences(of: "\"platform\": \"android\",", with: "\"platform\": \"android\", \"colour\": \"blue\",")
        try expectError(text, field: "colour", reasonContains: "unknown field 'colour'; expected one of battery, cpu, description, memory, name")
    }

    @Test func unknownNestedField() throws {
        let text = try flagshipText().replacingOccurrences(of: "\"capacity_mah\": 5000,", with: "\"capacity_mah\": 5000, \"capacity_wh\": 19,")
        try expectError(text, field: "battery.capacity_wh", reasonContains: "unknown field 'capacity_wh'")
    }

    @Test func unknownFieldInACluster() throws {
        let text = try flagshipChanged { object in
            var cpu = object["cpu"] as! [String: Any]
            var clusters = cpu["clusters"] as! [[String: Any]]
            clusters[1]["turbo"] = true
            cpu["clusters"] = clusters
            object["cpu"] = cpu
        }
        try expectError(text, field: "cpu.clusters[1].turbo", reasonContains: "unknown field 'turbo'")
    }

    @Test func duplicateKey() throws {
        let text = try flagshipText().replacingOccurrences(of: "\"capacity_mah\": 5000,", with: "\"capacity_mah\": 5000, \"capacity_mah\": 50,")
        try expectError(text, field: "battery.capacity_mah", reasonContains: "written twice")
    }

    @Test func nameUnlikeTheFile() throws {
        let directory = NSTemporaryDirectory() + "ember-profile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/my-phone.json"
        try flagshipText().write(toFile: path, atomically: true, encoding: .utf8)
        #expect {
            _ = try DeviceProfile.load(path: path)
        } throws: { error in
            (error as? DeviceError)?.field == "name" && "\(error)".contains("differs from the file's name 'my-phone'")
        }
        let renamed = directory + "/flagship-android.json"
        try FileManager.default.moveItem(atPath: path, toPath: renamed)
        #expect(try DeviceProfile.load(path: renamed).name == "flagship-android")
    }

    @Test func voltageFallingWithFrequency() throws {
        let text = try flagshipChanged { object in
            var cpu = object["cpu"] as! [String: Any]
            var clusters = cpu["clusters"] as! [[String: Any]]
            clusters[0]["voltages"] = Array((clusters[0]["voltages"] as! [Double]).reversed())
            cpu["clusters"] = clusters
            object["cpu"] = cpu
        }
        try expectError(text, field: "cpu.clusters[0].voltages[1]", reasonContains: "voltage must not decrease as frequency rises")
    }

    @Test func batteryVoltageFallingWithCharge() throws {
        let text = try flagshipChanged { object in
            var battery = object["battery"] as! [String: Any]
            var volts = battery["ocv_v"] as! [Double]
            volts.swapAt(2, 3)
            battery["ocv_v"] = volts
            object["battery"] = battery
        }
        try expectError(text, field: "battery.ocv_v[2]", reasonContains: "must not fall as the charge rises")
    }

    @Test func tooManyOperatingPoints() throws {
        let text = try flagshipChanged { object in
            var cpu = object["cpu"] as! [String: Any]
            var clusters = cpu["clusters"] as! [[String: Any]]
            clusters[0]["frequencies_mhz"] = (0..<100_000).map { 100 + Double($0) * 0.01 }
            clusters[0]["voltages"] = [Double](repeating: 0.8, count: 100_000)
            cpu["clusters"] = clusters
            object["cpu"] = cpu
        }
        try expectError(text, field: "cpu.clusters[0].frequencies_mhz", reasonContains: "at most 64")
    }

    @Test(arguments: [("NaN", "must be a finite number"), ("Infinity", "must be a finite number"), ("-Infinity", "finite number"),
                      ("1e999", "too large for a number"), ("-5000", "must not be negative")])
    func numbersThatAreNotCapacities(_ written: String, _ reason: String) throws {
        let text = try flagshipText().replacingOccurrences(of: "\"capacity_mah\": 5000", with: "\"capacity_mah\": \(written)")
        try expectError(text, field: "battery.capacity_mah", reasonContains: reason)
    }

    @Test func fractionalWholeNumber() throws {
        let text = try flagshipChanged { object in
            var cpu = object["cpu"] as! [String: Any]
            cpu["default_threads"] = 2.5
            object["cpu"] = cpu
        }
        try expectError(text, field: "cpu.default_threads", reasonContains: "whole number")
    }

    @Test func nestingTooDeep() throws {
        let text = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        try expectError(text, field: nil, reasonContains: "nested deeper than 64 levels")
    }

    @Test func fileTooLarge() throws {
        let text = "{\"name\": \"" + String(repeating: "x", count: JSONFile.maximumFileBytes) + "\"}"
        try expectError(text, field: "", reasonContains: "larger than 4 MiB")
    }
    /// The strict reader's exact words, kept when it moved onto EmberCore's one JSON parser
    /// (checked then against the old reader on 200,000 mutated documents: same codes, fields, reasons).
    @Test(arguments: [
        ("{\"a\": [1, 2", "invalidJSON", "", "is not valid JSON (line 1, in a: unexpected end of the file; expected ']')"),
        ("{\"a\": {\"b\": 1 \"c\": 2}}", "invalidJSON", "", "is not valid JSON (line 1, in a.b: expected ',' or '}' after the value)"),
        ("[1,\n[2, 3 4]]", "invalidJSON", "", "is not valid JSON (line 2, in [1][1]: expected ',' or ']' after the value)"),
        ("{\"a\": 01}", "invalidJSON", "", "is not valid JSON (line 1, in a: a number must not start with 0)"),
        ("{\"a\": \"x\\q\"}", "invalidJSON", "", "is not valid JSON (line 1, in a: an unknown escape in a string)"),
        ("{\"a\": \"\\ud800x\"}", "invalidJSON", "", "is not valid JSON (line 1, in a: an unpaired \\u surrogate)"),
        ("{\"a\": \"x\ny\"}", "invalidJSON", "", "is not valid JSON (line 1, in a: a control character inside a string (write \\n, \\t))"),
        ("{\"a\": tru}", "invalidJSON", "", "is not valid JSON (line 1, in a: expected true)"),
        ("{\"a\": 1} x", "invalidJSON", "", "is not valid JSON (line 1: unexpected text after the end of the document)"),
        ("{\"a\": {\"b\": 1, \"b\": 2}}", "duplicateField", "a.b", "is written twice in the same object; keep one (readers disagree on which one counts)"),
        ("{\"list\": [{\"x\": -Infinity}]}", "invalidValue", "list[0].x", "must be a finite number; -Infinity is not a JSON number"),
        ("{\"a\": 2e400}", "invalidValue", "a", "2e400 is too large for a number"),
    ])
    func strictReaderMessages(_ text: String, _ code: String, _ field: String, _ reason: String) {
        #expect {
            _ = try JSONStrictReader.read(Data(text.utf8))
        } throws: { error in
            guard let failure = error as? JSONStrictReader.Failure else { return false }
            return failure.code.rawValue == code && failure.field == field && failure.reason == reason
        }
    }

    @Test func strictReaderFindsNumbersAnIntegerFieldRefuses() throws {
        let document = try JSONStrictReader.read(Data("\u{FEFF}{\"a\": [1, 2.5], \"b\": {\"c\": 1e2, \"d\": 99999999999999999999}}".utf8))
        #expect(document.nonIntegers.map(\.path) == ["a[1]", "b.c", "b.d"])
        #expect(document.nonIntegers.map(\.text) == ["2.5", "1e2", "99999999999999999999"])
        #expect(document.nonIntegers.first?.range == 13..<16)
    }
}

import EmberDevice
import Testing

@Test func probeFlagship() throws {
    let profile = try DeviceSupport.profile("flagship-android")
    var phone = SimulatedPhone(profile: profile, ambientCelsius: 25, socCelsius: 30, skinCelsius: 30, batteryPercent: 100)
    var energy = 0.0
    phone.observer = { energy += $0.totalWatts * ($0.end - $0.start) }
    let samples = DeviceSupport.sustainedDecode(&phone, workload: DeviceSupport.oneBillionQ4, seconds: 600)
    let tokens = samples.reduce(0) { $0 + $1.tokensPerSecond }
    print(samples.filter { Int($0.time) % 30 == 0 }.map { "\(Int($0.time)):\(Int($0.tokensPerSecond))" }.joined(separator: " "))
    print("skin \(phone.thermal.skinCelsius) soc \(phone.thermal.socCelsius) battery \(phone.batteryPercent) level \(phone.level) W avg \(energy/600) tokens/1% \(tokens / (100 - phone.batteryPercent)) J/tok \(energy/tokens)")
}

@Test(arguments: DeviceSupport.shippedProfiles) func probeAll(_ name: String) throws {
    let profile = try DeviceSupport.profile(name)
    var phone = SimulatedPhone(profile: profile, ambientCelsius: 25, socCelsius: 30, skinCelsius: 30, batteryPercent: 100)
    var energy = 0.0, soc = 0.0
    phone.observer = { energy += $0.totalWatts * ($0.end - $0.start); soc += $0.socWatts * ($0.end - $0.start) }
    let samples = DeviceSupport.sustainedDecode(&phone, workload: DeviceSupport.oneBillionQ4, seconds: 1800)
    let tokens = samples.reduce(0) { $0 + $1.tokensPerSecond }
    print(name, samples.filter { Int($0.time) % 60 == 0 }.map { "\(Int($0.time)):\(Int($0.tokensPerSecond))" }.joined(separator: " "))
    print(name, "skin \(phone.thermal.skinCelsius) soc \(phone.thermal.socCelsius) battery \(phone.batteryPercent) level \(phone.level) W avg \(energy/1800) socJ/tok \(soc/tokens) J/tok \(energy/tokens)")
}

import EmberDevice
import Foundation

enum DeviceSupport {
    /// The repository root (three levels above this file).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func profilePath(_ name: String) -> String {
        root.appendingPathComponent("Profiles/\(name).json").path
    }

    static func profile(_ name: String) throws -> DeviceProfile {
        try DeviceProfile.load(path: profilePath(name))
    }

    static let shippedProfiles = ["low-end-android", "flagship-android", "iphone-pro", "tablet"]

    /// LFM2-1.2B at Q4_0 (NexaAI's Galaxy S25 Ultra run): 1.17 B weights, about 0.66 GB per token.
    static let oneBillionQ4 = ModelWorkload(
        name: "lfm2-1.2b-q4_0", parameterCount: 1.17e9, weightBytesPerToken: 0.66e9,
        matmulFlopsPerToken: 2.34e9, attentionFlopsPerPosition: 6 * 4 * 32 * 64, keyValueBytesPerToken: 2 * 6 * 8 * 64 * 2)

    /// Decodes back to back for `seconds` and returns (time, tok/s) once per second.
    static func sustainedDecode(_ phone: inout SimulatedPhone, workload: ModelWorkload, seconds: Double,
                                threads: Int? = nil) -> [(time: Double, tokensPerSecond: Double)] {
        var samples: [(Double, Double)] = []
        var position = 64
        var tokensThisSecond = 0
        var nextSample = 1.0
        while phone.time < seconds {
            phone.perform(workload.decodeCost(position: position), threads: threads ?? phone.profile.cpu.defaultThreads)
            position = position >= 2048 ? 64 : position + 1
            tokensThisSecond += 1
            if phone.time >= nextSample {
                samples.append((nextSample, Double(tokensThisSecond)))
                tokensThisSecond = 0
                nextSample += 1
            }
        }
        return samples
    }
}

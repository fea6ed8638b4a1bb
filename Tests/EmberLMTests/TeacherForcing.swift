import EmberLM
import Foundation

/// Compares Ember's logits with llama.cpp's reference on the same prompts.
enum TeacherForcing {
    struct Report: CustomStringConvertible {
        var positions = 0
        var argmaxMatches = 0
        var confidentDisagreements = 0
        var errors: [Double] = []

        var argmaxAgreement: Double { Double(argmaxMatches) / Double(max(positions, 1)) }
        var medianLogitError: Double { percentile(0.5) }
        var percentile99LogitError: Double { percentile(0.99) }
        var maximumLogitError: Double { errors.max() ?? 0 }

        func percentile(_ fraction: Double) -> Double {
            guard !errors.isEmpty else { return 0 }
            let sorted = errors.sorted()
            let index = min(sorted.count - 1, Int((Double(sorted.count - 1) * fraction).rounded()))
            return sorted[index]
        }

        var description: String {
            String(format: "%d positions, argmax %.1f%%, confident disagreements %d, top-5 |Δlogit| median %.3f p99 %.3f max %.3f",
                   positions, argmaxAgreement * 100, confidentDisagreements, medianLogitError, percentile99LogitError,
                   maximumLogitError)
        }
    }

    /// Feeds `prompt_ids + gen_ids` as one sequence and compares, at each generated position, the
    /// argmax and the logits of llama.cpp's five largest ids.
    static func compare(model: LanguageModel, reference: ReferenceFile, threadCount: Int) throws -> Report {
        var report = Report()
        let session = InferenceSession(model: model.transformer, contextLength: 1024, threadCount: threadCount)
        for referenceCase in reference.allCases {
            session.reset()
            let sequence = referenceCase.prompt_ids + referenceCase.gen_ids.dropLast()
            let firstScored = referenceCase.prompt_ids.count - 1
            try session.evaluate(Array(sequence), logits: .from(firstScored)) { index, logits in
                let step = index - firstScored
                let expected = referenceCase.top5[step]
                let referenceTop = Int32(expected[0][0])
                let ours = Sampler.argmax(logits)
                report.positions += 1
                if ours == referenceTop {
                    report.argmaxMatches += 1
                } else if expected[0][1] - expected[1][1] >= 1.0 {
                    report.confidentDisagreements += 1
                }
                for entry in expected {
                    report.errors.append(abs(Double(logits[Int(entry[0])]) - entry[1]))
                }
            }
        }
        return report
    }

    struct GreedyReport {
        var total = 0
        var identical = 0
        /// llama.cpp's top-1 minus top-2 logit where each differing continuation forked.
        var forkGaps: [Double] = []
    }

    /// Generates 32 greedy tokens for each reference prompt and compares them with llama.cpp's.
    static func greedy(model: LanguageModel, reference: ReferenceFile, threadCount: Int) async throws -> GreedyReport {
        var report = GreedyReport()
        let generator = Generator(model: model, contextLength: 1024, threadCount: threadCount)
        for referenceCase in reference.allCases {
            let request = GenerationRequest(prompt: .ids(referenceCase.prompt_ids), maxTokens: referenceCase.gen_ids.count,
                                            sampling: .greedy, ignoreEndOfGeneration: true)
            var ids: [Int32] = []
            for try await event in generator.generate(request) {
                if case .token(let id, _) = event, id >= 0 { ids.append(id) }
            }
            report.total += 1
            if ids == referenceCase.gen_ids {
                report.identical += 1
            } else if let fork = zip(ids, referenceCase.gen_ids).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset {
                let top = referenceCase.top5[fork]
                report.forkGaps.append(top[0][1] - top[1][1])
            }
        }
        return report
    }
}

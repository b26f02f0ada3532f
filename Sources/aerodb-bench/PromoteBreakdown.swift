// PromoteBreakdown.swift — `aerodb-bench promote`'s step breakdown: read from the candidates'
// event journals (`events.jsonl`), where every promotion outcome carries `steps_us` (the
// candidate's own monotonic timings, PromotionTimings.swift in AeroServer). Printed as the
// p50 and max of each step per kind, so docs/benchmarks.md can say where the time goes.

import AeroCore
import Foundation

enum PromoteBreakdown {
    /// Steps per kind ("switchover", "failover"): step name -> microseconds, one per promotion.
    static func read(journals: [String]) -> [String: [(String, [UInt64])]] {
        var kindOf: [String: String] = [:]
        var outcomes: [(id: String, steps: [(String, UInt64)])] = []
        for path in journals {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
            for line in text.split(separator: "\n") {
                guard let event = try? JSONParser.parse(String(line)), let name = event["event"]?.stringValue,
                      let fields = event["fields"], let id = fields["id"]?.stringValue else { continue }
                if name == "promotion_decision", let kind = fields["kind"]?.stringValue { kindOf[id] = kind }
                if name == "promotion_promoted", case .array(let steps)? = fields["steps_us"] {
                    outcomes.append((id, steps.compactMap { step in
                        guard let s = step["step"]?.stringValue, let us = step["us"]?.integerValue else { return nil }
                        return (s, UInt64(max(0, us)))
                    }))
                }
            }
        }
        var result: [String: [(String, [UInt64])]] = [:]
        for outcome in outcomes {
            guard let kind = kindOf[outcome.id] else { continue }
            var rows = result[kind] ?? []
            for (step, us) in outcome.steps {
                if let index = rows.firstIndex(where: { $0.0 == step }) { rows[index].1.append(us) } else { rows.append((step, [us])) }
            }
            result[kind] = rows
        }
        return result
    }

    static func print(journals: [String]) {
        let breakdown = read(journals: journals)
        for kind in ["switchover", "failover"] {
            guard let rows = breakdown[kind], !rows.isEmpty else { continue }
            Swift.print("\(kind) on the candidate, per step (events.jsonl steps_us):  step  n  p50 ms  max ms")
            var total: Double = 0
            for (step, values) in rows {
                let sorted = values.sorted()
                let p50 = Double(sorted[sorted.count / 2]) / 1000
                total += p50
                Swift.print("  " + step.padding(toLength: 24, withPad: " ", startingAt: 0)
                            + String(format: " %4d %8.2f %8.2f", sorted.count, p50, Double(sorted.last!) / 1000))
            }
            Swift.print("  " + "sum of p50s".padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "      %8.2f", total))
        }
    }
}

// PromotionMetrics.swift — promotion counters in the node's Prometheus registry:
//   aerodb_promotion_decisions_total{allowed="true|false"}
//   aerodb_promotion_refusals_total{rule="ID"}   one per failed native rule (DUR-1, FENCE-1, …)
//                                                  and PROMOTE-* refusal: the bare rule id,
//                                                  as aerodb_refusals_total{rule} has it
//   aerodb_policy_refusals_total{policy="NAME"}  one per refusing (or failing) site policy
//   aerodb_promotions_total{outcome="promoted|failed"}
// Counters are made on first use (a rule id or policy name is only known when it refuses);
// the registry returns the same counter for the same name and labels.

import AeroPromotion
import Metrics
import NIOConcurrencyHelpers
import Prometheus

final class PromotionMetrics: Sendable {
    let registry: PrometheusCollectorRegistry

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }

    private static func name(_ metric: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "aerodb", metricName: metric, unitName: "total", helpText: help)
    }

    func decided(_ decision: Decision) {
        registry.makeCounter(descriptor: Self.name("promotion_decisions", "Promotion decisions made on this node (dry runs included)."), labels: [("allowed", decision.allowed ? "true" : "false")]).increment()
        for reason in decision.reasons {
            // One label convention: a bare rule id under `rule`, a policy name under `policy`.
            if reason.source.hasPrefix("policy:") {
                registry.makeCounter(descriptor: Self.name("policy_refusals", "Promotion refusals by site policy."),
                                     labels: [("policy", String(reason.source.dropFirst("policy:".count)))]).increment()
            } else {
                refused(rule: reason.source.hasPrefix("rule:") ? String(reason.source.dropFirst("rule:".count)) : reason.source)
            }
        }
    }

    func refused(rule: String) {
        registry.makeCounter(descriptor: Self.name("promotion_refusals", "Promotion refusals by rule id (native rules and PROMOTE-*)."), labels: [("rule", rule)]).increment()
    }

    func promoted() {
        registry.makeCounter(descriptor: Self.name("promotions", "Promotion attempts by outcome."), labels: [("outcome", "promoted")]).increment()
    }

    func failed(step: String) {
        registry.makeCounter(descriptor: Self.name("promotions", "Promotion attempts by outcome."), labels: [("outcome", "failed")]).increment()
        registry.makeCounter(descriptor: Self.name("promotion_failures", "Failed promotion attempts by step."), labels: [("step", step)]).increment()
    }
}

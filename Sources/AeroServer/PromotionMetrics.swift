// PromotionMetrics.swift — promotion counters in the node's Prometheus registry:
//   aerodb_promotion_decisions_total{allowed="true|false"}
//   aerodb_promotion_refusals_total{rule="..."}   one per failed native rule / refusing policy /
//                                                  PROMOTE-* refusal of the coordinator
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
        for reason in decision.reasons { refused(rule: reason.source) }
    }

    func refused(rule: String) {
        registry.makeCounter(descriptor: Self.name("promotion_refusals", "Promotion refusals by rule id, policy or PROMOTE-* rule."), labels: [("rule", rule)]).increment()
    }

    func promoted() {
        registry.makeCounter(descriptor: Self.name("promotions", "Promotion attempts by outcome."), labels: [("outcome", "promoted")]).increment()
    }

    func failed(step: String) {
        registry.makeCounter(descriptor: Self.name("promotions", "Promotion attempts by outcome."), labels: [("outcome", "failed")]).increment()
        registry.makeCounter(descriptor: Self.name("promotion_failures", "Failed promotion attempts by step."), labels: [("step", step)]).increment()
    }
}

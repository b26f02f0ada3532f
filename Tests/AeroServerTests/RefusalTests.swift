import AeroCore
import AeroReplication
import AeroServer
import AeroTestSupport
import Foundation
import Testing


@Suite("Refusals, error codes and their documentation")
struct RefusalTests {
    @Test("every error code and replication rule id is documented")
    func documented() throws {
        let server = try Repository.text("docs/server.md")
        for code in ErrorCode.allCases {
            #expect(server.contains("`\(code.rawValue)`"), "docs/server.md lacks \(code.rawValue)")
        }
        let replication = try Repository.text("docs/replication.md")
        let sessionRules: [RuleID] = [.replStaleEpoch, .replWrongPrimary, .replUnknownPeer, .replLsnGap,
                                      .replEpochRegression, .replDiverged, .replHistoryMismatch, .replProtocol]
        for rule in sessionRules {
            #expect(replication.contains("`\(rule)`"), "docs/replication.md lacks \(rule)")
        }
    }

    @Test("codes are unique, safety rules are REPL-, statuses are errors")
    func codes() {
        #expect(Set(ErrorCode.allCases.map(\.rawValue)).count == ErrorCode.allCases.count)
        for code in ErrorCode.allCases {
            #expect((400...599).contains(code.httpStatus))
            #expect(code.isSafetyRule == code.rawValue.hasPrefix("REPL-"))
        }
        #expect(ErrorCode.writeOnReplica.isSafetyRule && !ErrorCode.notFound.isSafetyRule)
    }

    @Test("the response body has code, message and an explanation citing the rule")
    func body() {
        let refusal = Refusal.syncTimeout(lsn: LSN(42), epoch: Epoch(3), missing: ["n2"], timeoutMs: 5000)
        let error = refusal.json["error"]
        #expect(error?["code"] == .string("REPL-SYNC-TIMEOUT"))
        #expect(error?["message"]?.stringValue?.contains("not acknowledged") == true)
        #expect(error?["explanation"]?["rule"] == .string("REPL-SYNC-TIMEOUT"))
        #expect(error?["explanation"]?["facts"]?["missing_replicas"] == .array([.string("n2")]))
        #expect(refusal.code.httpStatus == 503)
    }

    @Test("each safety constructor names its rule and the values it looked at")
    func constructors() {
        let cases: [(Refusal, ErrorCode, String)] = [
            (.writeOnReplica(node: "n2", primary: "n1", epoch: Epoch(4)), .writeOnReplica, "n1"),
            (.writeOnReplica(node: "n2", primary: nil, epoch: Epoch(4)), .writeOnReplica, "no known primary"),
            (.staleEpoch(node: "n1", nodeEpoch: Epoch(3), seenEpoch: Epoch(4), seenFrom: "n2"), .staleEpoch, "epoch 4"),
            (.staleRead(node: "n2", minLSN: LSN(50), appliedLSN: LSN(40), waitedMs: 1000), .staleRead, "min_lsn 50"),
            (.commitBacklog(waiters: 10, max: 10), .commitBacklog, "limit 10"),
        ]
        for (refusal, code, fragment) in cases {
            #expect(refusal.code == code)
            #expect(refusal.explanation.rule == code.rawValue)
            #expect(refusal.message.contains(fragment), "\(refusal.message)")
        }
    }

    @Test("a request error cannot be built for a safety rule")
    func requestOnly() async {
        await #expect(processExitsWith: .failure) { _ = Refusal.request(.staleRead, "no") }
    }
}

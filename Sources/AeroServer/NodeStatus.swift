// NodeStatus.swift — the one place a node's facts are measured: `GET /v1/status` answers them,
// and the promotion candidate's facts document (PromotionFacts.swift) holds them, both as the
// typed `NodeFacts` rendered by FactsJSON. Nothing here is a literal; each field says where it
// is measured (docs/promotion-rules.md, "Facts fields", has the same table):
//
//   field              measured from
//   epoch, role        the authority file (StorageEngine.authority)
//   durable_lsn        the engine's fsynced position
//   applied_lsn        the engine's read-visible position (applied == durable, storage E1)
//   acked_lsn          primary: the highest LSN this process answered 200 for, after the local
//                      fsync and, in sync mode, its epoch's quorum (KVService.acknowledgedLSN);
//                      a replica acknowledges nothing to clients: null
//   primary_acked_lsn  replica: the primary's acked_lsn as carried by its last heartbeat;
//                      null before the first heartbeat and on a primary
//   wal.continuous     false while the primary's word is "re-seed" (mustReseed, no re-seed
//                      completed since) or a replicated record did not continue the log
//   wal.corrupt        the engine's sticky WAL failure (a failed fsync or checksum)
//   recovering         a re-seed is needed or running, or this session has not yet reached the
//                      primary's durable LSN announced in its hello (the position at connect)
//   following          the authority file
//   last_contact_ms    replica: monotonic ms since the last message of any kind from the
//                      primary; null before the first message and on a primary
//   labels             the member's configuration
//   policy_set_digest  the digest of the policy set its policy_dir gives now (PolicySet.swift),
//                      null when the directory is unusable; POLICY-1 compares them
//   engine_version     this build (AeroVersion)
// The engine finished recovery before the HTTP server started, so a node that answers has
// recovered its own log; `recovering` is about catching up with the primary.

import AeroCore
import AeroReplication
import AeroStorage

enum NodeStatus {
    /// This node's facts now. `nowMs` is the monotonic clock reading `last_contact_ms` is
    /// measured against (a seam for tests; the server passes `CommitWaiters.monotonicMs()`).
    static func facts(service: KVService, nowMs: UInt64) -> NodeFacts {
        let engine = service.engine
        let authority = engine.authority
        let isPrimary = authority.role == .primary
        // A primary follows no one: the link is the follower's, present only on a replica.
        let link = isPrimary ? nil : service.replicaObserver.map { (observer: $0, state: $0.linkState) }
        // Acknowledged before durable: a commit finishing in between must not show acked > durable.
        // Null until this process acknowledged a write (a restarted primary does not know what
        // it acknowledged before; 0 would claim "nothing").
        let acked: LSN? = isPrimary ? Optional(service.acknowledgedLSN).flatMap { $0 == .zero ? nil : $0 } : nil
        let durable = engine.durableLSN
        let applied = engine.appliedLSN
        let walContinuous = !(link?.state.reseedNeeded ?? false) && !(link?.state.gapSeen ?? false)
        let catchingUp = link.map { link in
            link.state.catchUpTargetLSN.map { target in !link.state.caughtUp && applied < target } ?? false
        } ?? false
        let recovering = catchingUp || (link?.state.reseeding ?? false) || (link?.state.reseedNeeded ?? false)
        let primaryAcked = link.flatMap { $0.state.heardPrimaryAcked ? $0.observer.primaryAckedLSN : nil }
        let lastContactMs = link?.state.lastContactMs.map { nowMs >= $0 ? nowMs - $0 : 0 }
        return NodeFacts(
            id: service.config.id,
            role: authority.role,
            reachable: true,  // measured by answering: an unreached member is built by the caller
            epoch: authority.epoch,
            durableLSN: durable,
            appliedLSN: applied,
            ackedLSN: acked,
            primaryAckedLSN: primaryAcked,
            wal: WALFacts(continuous: walContinuous, corrupt: engine.failureReason != nil),
            recovering: recovering,
            following: authority.following,
            lastContactMs: lastContactMs,
            labels: service.config.selfMember?.labels ?? [:],
            policySetDigest: PolicySet.digest(service.config),
            engineVersion: AeroVersion.string)
    }
}

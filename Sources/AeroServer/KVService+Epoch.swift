// KVService+Epoch.swift — the epoch watch (KVService rule 8): once a peer or client showed an
// epoch above this node's, the node accepts no write, and the engine is fenced so that no
// commit already in flight is acknowledged after it either.

import AeroCore
import AeroStorage

extension KVService {
    /// `writtenLSN`: the write was already made (the check after the commit wait).
    func staleEpochRefusal(writtenLSN: LSN? = nil) -> Refusal? {
        guard let seen = higherEpoch.withLockedValue({ $0 }), seen.epoch > engine.currentEpoch else { return nil }
        return .staleEpoch(node: config.id, nodeEpoch: engine.currentEpoch, seenEpoch: seen.epoch, seenFrom: seen.from, writtenLSN: writtenLSN)
    }

    /// The highest epoch above this node's that a peer or client showed (rule 8), if any.
    var learnedEpoch: (epoch: Epoch, from: String)? {
        guard let seen = higherEpoch.withLockedValue({ $0 }), seen.epoch > engine.currentEpoch else { return nil }
        return seen
    }

    /// A peer showed an epoch above this node's: stop accepting writes (rule 8).
    public func learnedHigherEpoch(_ epoch: Epoch, from peer: String) async {
        guard epoch > engine.currentEpoch else { return }
        higherEpoch.withLockedValue { current in
            if current == nil || current!.epoch < epoch { current = (epoch, peer) }
        }
        // Waits for commits already accepted; they fail or finish, none is acknowledged after.
        _ = try? await engine.fence()
    }
}

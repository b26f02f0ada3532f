import AeroCore
@testable import AeroStorage
import Foundation
import Testing

/// RS3/A2: a re-seed started while an earlier one is committed but not yet applied checks its
/// epoch against the authority that earlier re-seed committed, not the one it replaced; the
/// epoch on disk never goes backwards.
@Suite struct ReseedAfterInterruptedReseedTests {
    @Test func aReseedCannotMoveTheEpochBelowAPendingCommittedReseed() throws {
        let primaryDir = temporaryDirectory("reseed2-primary")
        let replicaDir = temporaryDirectory("reseed2-replica")
        defer {
            try? FileManager.default.removeItem(atPath: primaryDir)
            try? FileManager.default.removeItem(atPath: replicaDir)
        }
        let (image, epochOne) = try threeCommitPrimaryImage(directory: primaryDir)

        // Re-seed 1 adopts epoch 2 (a later epoch of the same primary) and is interrupted right
        // after its commit point.
        let epochTwo = epochOne + [EpochHistoryEntry(epoch: Epoch(2), primary: NodeID("a"), startLSN: image.lsn.next)]
        let first = Authority(nodeID: NodeID("b"), role: .replica, epoch: Epoch(2), following: NodeID("a"), history: epochTwo)
        #expect(throws: StorageError.self) {
            try ReseedInstall.install(image.bytes, authority: first, directory: replicaDir, io: CrashAfterReseedCommitIO())
        }

        // Re-seed 2 from a stale source at epoch 1 must be refused (nothing changes but the
        // roll-forward of re-seed 1).
        let stale = Authority(nodeID: NodeID("b"), role: .replica, epoch: Epoch(1), following: NodeID("a"), history: epochOne)
        #expect(throws: StorageError.self) {
            try ReseedInstall.install(image.bytes, authority: stale, directory: replicaDir)
        }
        #expect(try ReseedInstall.readAuthority(directory: replicaDir) == first)
    }
}

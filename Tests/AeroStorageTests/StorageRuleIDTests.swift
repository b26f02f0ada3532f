import AeroCore
import AeroTestSupport
@testable import AeroStorage
import Foundation
import Testing

/// Trip tests for the storage engine's refusal ids (docs/rule-ids.md): each provokes a real
/// refusal of the engine and asserts the registry id it carries, in `ruleID` and in the message.
@Suite struct StorageRuleIDTests {
    /// The id a refusing call threw with; records an issue when it did not refuse.
    static func refusedID(_ what: String, _ body: () throws -> Void) -> String? {
        do {
            try body()
            Issue.record("\(what) was not refused")
            return nil
        } catch let error as StorageError {
            #expect(error.description.hasPrefix("[\(error.ruleID)]"), "\(error)")
            return error.ruleID
        } catch {
            Issue.record("\(what): unexpected error \(error)")
            return nil
        }
    }

    @Test func aClosedEngineRefusesWrites() throws {
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(SimulatedFileSystem()))
        engine.close()
        #expect(Self.refusedID("a write after close") { _ = try engine.commitBlocking(put(("a", "b"))) } == RuleID.storageClosed.rawValue)
    }

    @Test func aReplicaRefusesLocalWrites() throws {
        let replica = try StorageEngine.open(directory: "/r", options: replicaOptions(SimulatedFileSystem()))
        defer { replica.close() }
        #expect(Self.refusedID("a local write on a replica") { _ = try replica.commitBlocking(put(("a", "b"))) } == RuleID.storageWriteNotWritable.rawValue)
    }

    @Test func aPreconditionThatDoesNotHoldWritesNothing() throws {
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(SimulatedFileSystem()))
        defer { engine.close() }
        var txn = put(("a", "b"))
        txn.expect("a", equals: Array("old".utf8))
        #expect(Self.refusedID("a failed precondition") { _ = try engine.commitBlocking(txn) } == RuleID.storageWritePreconditionFailed.rawValue)
        #expect(engine.get("a") == nil && engine.durableLSN == LSN(0))
    }

    @Test func anEmptyKeyIsInvalid() throws {
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(SimulatedFileSystem()))
        defer { engine.close() }
        #expect(Self.refusedID("an empty key") { _ = try engine.commitBlocking(put(("", "b"))) } == RuleID.storageWriteInvalidKey.rawValue)
    }

    @Test func aValueOverTheLimitIsRefused() throws {
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(SimulatedFileSystem()))
        defer { engine.close() }
        var txn = Transaction()
        txn.put("a", [UInt8](repeating: 7, count: WALFormat.valueBytesMax + 1))
        #expect(Self.refusedID("a value of valueBytesMax + 1 bytes") { _ = try engine.commitBlocking(txn) } == RuleID.storageWriteValueTooLarge.rawValue)
    }

    @Test func anEmptyTransactionIsRefused() throws {
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(SimulatedFileSystem()))
        defer { engine.close() }
        #expect(Self.refusedID("an empty transaction") { _ = try engine.commitBlocking(Transaction()) } == RuleID.storageWriteEmptyTransaction.rawValue)
    }

    @Test func aReplicatedRecordPastTheNextLSNIsAGap() throws {
        let replica = try StorageEngine.open(directory: "/r", options: replicaOptions(SimulatedFileSystem()))
        defer { replica.close() }
        try adopt(replica, Authority(nodeID: "n1", role: .primary, epoch: Epoch(1), following: nil,
                                     history: [EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1))]))
        let payload = TransactionCodec.encode([.put(key: "a", value: [1])])
        _ = try replica.appendReplicatedBlocking([WALRecord(kind: .transaction, epoch: Epoch(1), lsn: LSN(1), payload: payload)])
        let skipping = WALRecord(kind: .transaction, epoch: Epoch(1), lsn: LSN(3), payload: payload)
        #expect(Self.refusedID("LSN 3 when 2 is next") { _ = try replica.appendReplicatedBlocking([skipping]) } == RuleID.storageReplicaLsnGap.rawValue)
        #expect(replica.durableLSN == LSN(1))
    }

    @Test func anAuthorityEpochGoingBackwardsIsRefused() throws {
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(SimulatedFileSystem()))
        defer { engine.close() }
        let before = engine.authority
        #expect(Self.refusedID("epoch 0") {
            _ = try engine.updateAuthority { current in
                var next = current
                next.epoch = Epoch(0)
                return next
            }
        } == RuleID.storageAuthorityRefused.rawValue)
        #expect(engine.authority == before)
    }

    @Test func aDamagedCheckpointImageIsRefusedBeforeAnythingIsStaged() throws {
        let primary = try StorageEngine.open(directory: "/p", options: simOptions(SimulatedFileSystem()))
        _ = try primary.commitBlocking(put(("a", "b")))
        _ = try primary.checkpointBlocking()
        var image = try primary.checkpointImage()
        primary.close()
        image.bytes[image.bytes.count / 2] ^= 1
        #expect(Self.refusedID("a flipped byte in the image") { _ = try ReseedInstall.verify(image.bytes, history: []) } == RuleID.storageCheckpointInvalid.rawValue)
    }
}

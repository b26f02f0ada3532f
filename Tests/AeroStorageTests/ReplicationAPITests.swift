import AeroCore
import AeroTestSupport
@testable import AeroStorage
import Foundation
import Testing

func replicaOptions(_ fs: SimulatedFileSystem, following: NodeID = "n1") -> StorageOptions {
    var o = simOptions(fs)
    o.initialAuthority = .newReplica("n2", following: following)
    return o
}

/// Points a replica at the primary's epoch history (what the server does before streaming).
func adopt(_ replica: StorageEngine, _ primary: Authority) throws {
    try replica.updateAuthority { current in
        var next = current
        next.epoch = primary.epoch
        next.history = primary.history
        next.following = primary.nodeID
        return next
    }
}

func records(_ result: WALReadResult) -> [WALRecord] {
    if case .records(let r) = result { return r }
    Issue.record("expected records, got \(result)")
    return []
}

@Suite struct ReplicationAPITests {
    @Test func aReplicaAppendsThePrimarysRecordsAndEndsInTheSameState() async throws {
        var po = simOptions(SimulatedFileSystem(), segmentBytes: 300)
        po.initialAuthority = .standalonePrimary("n1")
        let primary = try StorageEngine.open(directory: "/p", options: po)
        defer { primary.close() }
        for i in 0..<25 { _ = try await primary.commit(put(("k\(i % 4)", "v\(i)"))) }
        let replicaFS = SimulatedFileSystem()
        let replica = try StorageEngine.open(directory: "/r", options: replicaOptions(replicaFS))
        try adopt(replica, primary.authority)
        var next = LSN(1)
        while next <= primary.durableLSN {
            let batch = records(try primary.readWAL(from: next, bytesMax: 200))
            #expect(!batch.isEmpty && batch.first?.lsn == next)
            next = try await replica.appendReplicated(batch).next
        }
        #expect(replica.durableLSN == primary.durableLSN)
        for i in 0..<4 { #expect(replica.get("k\(i)") == primary.get("k\(i)")) }
        #expect(records(try primary.readWAL(from: primary.durableLSN.next)).isEmpty)
        // A replica refuses local writes and names whom it follows.
        await #expect(throws: StorageError.notWritable(role: .replica, following: "n1", epoch: Epoch(1))) {
            try await replica.commit(put(("x", "y")))
        }
        // A primary refuses replicated records.
        await #expect(throws: StorageError.self) { try await primary.appendReplicated([]) }
        replica.close()
        let reopened = try StorageEngine.open(directory: "/r", options: replicaOptions(replicaFS.crashImage()))
        defer { reopened.close() }
        #expect(reopened.durableLSN == LSN(25) && reopened.get("k1") == primary.get("k1"))
    }

    @Test func continuityAndEpochLineageAreChecked() async throws {
        let replica = try StorageEngine.open(directory: "/r", options: replicaOptions(SimulatedFileSystem()))
        defer { replica.close() }
        let payload = TransactionCodec.encode([.put(key: "a", value: [1])])
        func rec(_ lsn: UInt64, _ epoch: UInt64) -> WALRecord { WALRecord(kind: .transaction, epoch: Epoch(epoch), lsn: LSN(lsn), payload: payload) }
        // Epoch 1 not accepted by the authority yet.
        await #expect(throws: StorageError.self) { try await replica.appendReplicated([rec(1, 1)]) }
        try adopt(replica, Authority(nodeID: "n1", role: .primary, epoch: Epoch(2), following: nil, history: [
            EpochHistoryEntry(epoch: Epoch(1), primary: "n1", startLSN: LSN(1)),
            EpochHistoryEntry(epoch: Epoch(2), primary: "n3", startLSN: LSN(3)),
        ]))
        #expect(try await replica.appendReplicated([rec(1, 1), rec(2, 1)]) == LSN(2))
        await #expect(throws: StorageError.replicationGap(expected: LSN(3), received: LSN(4))) {
            try await replica.appendReplicated([rec(4, 1)])
        }
        // Epoch 2 must open at LSN 3 exactly as the history says; epoch 3 is unknown.
        await #expect(throws: StorageError.self) { try await replica.appendReplicated([rec(3, 3)]) }
        #expect(try await replica.appendReplicated([rec(3, 2)]) == LSN(3))
        // Epoch going backwards.
        do {
            _ = try await replica.appendReplicated([rec(4, 1)])
            Issue.record("epoch going backwards accepted")
        } catch let e as StorageError { #expect(e.ruleID == "storage.replica.epoch-lineage") }
        // A batch with a bad record keeps the good prefix (durable) and reports the refusal.
        await #expect(throws: StorageError.replicationGap(expected: LSN(5), received: LSN(6))) {
            try await replica.appendReplicated([rec(4, 2), rec(6, 2)])
        }
        #expect(replica.durableLSN == LSN(4))
    }

    @Test func authorityNeverGoesBackwardsAndHistoryIsAppendOnly() throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        #expect(throws: StorageError.self) { try engine.updateAuthority { var a = $0; a.epoch = .zero; a.history = []; return a } }
        #expect(throws: StorageError.self) {
            try engine.updateAuthority { var a = $0; a.history[0].startLSN = LSN(9); return a }
        }
        try engine.updateAuthority { var a = $0; a.role = .replica; a.following = "n9"; return a }
        engine.close()
        let reopened = try StorageEngine.open(directory: "/d", options: simOptions(fs.crashImage()))
        defer { reopened.close() }
        #expect(reopened.authority.role == .replica && reopened.authority.following == "n9")
    }

    @Test func promotionWritesAuthorityThenAnEpochStartRecord() async throws {
        let fs = SimulatedFileSystem()
        let replica = try StorageEngine.open(directory: "/r", options: replicaOptions(fs))
        try adopt(replica, .standalonePrimary("n1"))
        let payload = TransactionCodec.encode([.put(key: "a", value: [1])])
        _ = try await replica.appendReplicated([WALRecord(kind: .transaction, epoch: Epoch(1), lsn: LSN(1), payload: payload)])
        let entry = try await replica.promote(to: Epoch(2))
        #expect(entry == EpochHistoryEntry(epoch: Epoch(2), primary: "n2", startLSN: LSN(2)))
        #expect(replica.authority.role == .primary && replica.currentEpoch == Epoch(2) && replica.durableLSN == LSN(2))
        #expect(try await replica.commit(put(("b", "2"))) == LSN(3))
        let log = records(try replica.readWAL(from: LSN(1)))
        #expect(log.map(\.epoch.rawValue) == [1, 2, 2] && log[1].kind == .epochStart)
        await #expect(throws: StorageError.self) { try await replica.promote(to: Epoch(2)) }
        replica.close()
        let reopened = try StorageEngine.open(directory: "/r", options: replicaOptions(fs.crashImage()))
        defer { reopened.close() }
        #expect(reopened.authority.history.count == 2 && reopened.lastEpoch == Epoch(2))
    }

    @Test func fencingStopsCommitsAndReturnsTheFinalLSN() async throws {
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(SimulatedFileSystem()))
        defer { engine.close() }
        _ = try await engine.commit(put(("a", "1")))
        #expect(try await engine.fence() == LSN(1))
        await #expect(throws: StorageError.self) { try await engine.commit(put(("b", "2"))) }
        engine.unfence()
        #expect(try await engine.commit(put(("b", "2"))) == LSN(2))
    }

    @Test func reseedFromACheckpointReplacesTheWAL() async throws {
        let primary = try StorageEngine.open(directory: "/p", options: simOptions(SimulatedFileSystem()))
        defer { primary.close() }
        for i in 0..<10 { _ = try await primary.commit(put(("k\(i)", "v\(i)"))) }
        let image = try primary.checkpointImage()
        #expect(image.lsn == LSN(10))
        _ = try await primary.commit(put(("k0", "new")))

        // A replica with a diverged WAL (records of its own) is re-seeded explicitly, all or
        // nothing (ReseedInstall, RS1–RS4; the install renames directories, so a real one).
        let dir = temporaryDirectory("reseed-replica")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let own = try StorageEngine.open(directory: dir)
        for i in 0..<3 { _ = try own.commitBlocking(put(("k\(i)", "own\(i)"))) }
        own.close()
        let adopted = Authority(nodeID: "local", role: .replica, epoch: primary.authority.epoch, following: "local",
                                history: primary.authority.history)
        #expect(throws: StorageError.self) { try ReseedInstall.install([1, 2, 3], authority: adopted, directory: dir) }
        #expect(try ReseedInstall.install(image.bytes, authority: adopted, directory: dir).lsn == LSN(10))
        let replica = try StorageEngine.open(directory: dir)
        #expect(replica.durableLSN == LSN(10) && text(replica.get("k9")) == "v9" && text(replica.get("k0")) == "v0")
        #expect(replica.authority == adopted)
        #expect(try await replica.appendReplicated(records(try primary.readWAL(from: LSN(11)))) == LSN(11))
        #expect(text(replica.get("k0")) == "new")
        replica.close()
    }

    @Test func durableListenersHearEveryFlushOnceAndOnlyDurableLSNs() throws {
        var o = simOptions(SimulatedFileSystem())
        o.initialAuthority = .standalonePrimary("n1")
        let engine = try StorageEngine.open(directory: "/p", options: o)
        defer { engine.close() }
        let heard = HeardLSNs()
        let id = engine.addDurableListener { lsn in heard.add(lsn, durableNow: engine.durableLSN) }
        for i in 0..<10 { _ = try engine.commitBlocking(put(("k\(i)", "v"))) }
        #expect(heard.lsns == (1...10).map { LSN(UInt64($0)) }, "one announcement per flush (one commit each here)")
        #expect(heard.aheadOfDurable == 0, "an announced LSN is already durable")
        #expect(engine.countersSnapshot().fsyncs == 10)
        engine.removeDurableListener(id)
        _ = try engine.commitBlocking(put(("k", "v")))
        #expect(heard.lsns.count == 10, "a removed listener hears nothing")
    }

    @Test func aReplicatedAppendWithACompletionDoesNotWaitAndCompletesInOrder() async throws {
        var po = simOptions(SimulatedFileSystem())
        po.initialAuthority = .standalonePrimary("n1")
        let primary = try StorageEngine.open(directory: "/p", options: po)
        defer { primary.close() }
        for i in 0..<6 { _ = try await primary.commit(put(("k\(i)", "v\(i)"))) }
        let all = records(try primary.readWAL(from: LSN(1)))
        let replica = try StorageEngine.open(directory: "/r", options: replicaOptions(SimulatedFileSystem()))
        defer { replica.close() }
        try adopt(replica, primary.authority)
        let heard = HeardLSNs()
        let done = DispatchGroup()
        for range in [0..<2, 2..<3, 3..<6] {
            done.enter()
            replica.appendReplicated(Array(all[range])) { result in
                if case .success(let lsn) = result { heard.add(lsn, durableNow: replica.durableLSN) }
                done.leave()
            }
        }
        #expect(replica.lastLSN == LSN(6), "all three batches are appended when the calls return")
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in done.notify(queue: .global()) { c.resume() } }
        #expect(heard.lsns == [LSN(2), LSN(3), LSN(6)], "completions in LSN order, each with its batch's last LSN")
        #expect(heard.aheadOfDurable == 0)
        #expect(text(replica.get("k5")) == "v5")
        // A refused batch completes with the refusal and appends nothing.
        let outcome = ResultBox()
        replica.appendReplicated([all[0]]) { outcome.set($0) }
        #expect(throws: StorageError.replicationGap(expected: LSN(7), received: LSN(1))) { _ = try outcome.wait() }
        #expect(replica.lastLSN == LSN(6))
    }
}

/// LSNs announced to a test from storage threads. @unchecked: guarded by `lock`.
final class HeardLSNs: @unchecked Sendable {
    private let lock = NSLock()
    private var heard: [LSN] = []
    private var ahead = 0
    func add(_ lsn: LSN, durableNow: LSN) {
        lock.withLock {
            heard.append(lsn)
            if lsn > durableNow { ahead += 1 }
        }
    }
    var lsns: [LSN] { lock.withLock { heard } }
    var aheadOfDurable: Int { lock.withLock { ahead } }
}

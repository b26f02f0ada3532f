import AeroCore
import Foundation
import Testing

@testable import AeroStorage

/// ReseedInstall's invariants RS1–RS4 on real directories, including the states a crash leaves.
@Suite("Re-seed install: all or nothing, crash states rolled back or forward")
struct ReseedInstallTests {
    /// A primary n1 with keys k0..k19 at epoch 1; returns its checkpoint image and history.
    static func primaryImage(_ root: String) throws -> (bytes: [UInt8], history: [EpochHistoryEntry]) {
        var options = StorageOptions()
        options.initialAuthority = .standalonePrimary(NodeID("n1"))
        let engine = try StorageEngine.open(directory: root + "/n1", options: options)
        defer { engine.close() }
        for i in 0..<20 {
            var txn = Transaction()
            txn.put("k\(i)", Array("from n1 \(i)".utf8))
            _ = try engine.commitBlocking(txn)
        }
        return (try engine.checkpointImage().bytes, engine.authority.history)
    }

    /// n2's own state: a standalone primary of its own history with key `mine`.
    static func localState(_ dir: String) throws {
        var options = StorageOptions()
        options.initialAuthority = .standalonePrimary(NodeID("n2"))
        let engine = try StorageEngine.open(directory: dir, options: options)
        defer { engine.close() }
        var txn = Transaction()
        txn.put("mine", Array("local".utf8))
        _ = try engine.commitBlocking(txn)
    }

    static func replicaAuthority(_ history: [EpochHistoryEntry]) -> Authority {
        Authority(nodeID: NodeID("n2"), role: .replica, epoch: Epoch(1), following: NodeID("n1"), history: history)
    }

    static func withRoot(_ body: (String) throws -> Void) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-reseed-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try body(root)
    }

    @Test("install replaces the state: the image's keys, the adopted authority, no old WAL")
    func install() throws {
        try Self.withRoot { root in
            let (bytes, history) = try Self.primaryImage(root)
            let dir = root + "/n2"
            try Self.localState(dir)
            let facts = try ReseedInstall.install(bytes, authority: Self.replicaAuthority(history), directory: dir)
            #expect(facts.lsn == LSN(20) && facts.entries == 20)
            let engine = try StorageEngine.open(directory: dir)
            defer { engine.close() }
            #expect(engine.get("mine") == nil)
            #expect(engine.get("k7") == Array("from n1 7".utf8))
            #expect(engine.durableLSN == LSN(20))
            #expect(engine.authority == Self.replicaAuthority(history))
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.hasPrefix("wal-") && !$0.hasPrefix("reseed.") })
        }
    }

    @Test("refused before anything changes: a damaged image, an image of another epoch, another node's dir, an epoch going back")
    func refusals() throws {
        try Self.withRoot { root in
            let (bytes, history) = try Self.primaryImage(root)
            let dir = root + "/n2"
            try Self.localState(dir)
            var damaged = bytes
            damaged[damaged.count / 2] ^= 0xFF
            #expect(throws: StorageError.self) { try ReseedInstall.install(damaged, authority: Self.replicaAuthority(history), directory: dir) }
            let otherEpoch = [EpochHistoryEntry(epoch: Epoch(2), primary: NodeID("n1"), startLSN: LSN(1))]
            #expect(throws: StorageError.self) {
                try ReseedInstall.install(bytes, authority: Authority(nodeID: NodeID("n2"), role: .replica, epoch: Epoch(2), following: NodeID("n1"), history: otherEpoch), directory: dir)
            }
            #expect(throws: StorageError.self) {
                try ReseedInstall.install(bytes, authority: Authority(nodeID: NodeID("n3"), role: .replica, epoch: Epoch(1), following: NodeID("n1"), history: history), directory: dir)
            }
            let engine = try StorageEngine.open(directory: dir)
            #expect(engine.get("mine") == Array("local".utf8), "the local state is untouched")
            _ = try engine.updateAuthority { a in
                Authority(nodeID: a.nodeID, role: .primary, epoch: Epoch(3), following: nil,
                          history: a.history + [EpochHistoryEntry(epoch: Epoch(3), primary: NodeID("n2"), startLSN: LSN(2))])
            }
            engine.close()
            #expect(throws: StorageError.self) { try ReseedInstall.install(bytes, authority: Self.replicaAuthority(history), directory: dir) }
        }
    }

    @Test("a crash before the commit rename leaves the old state; after it, the new state is rolled forward, also mid-apply")
    func crashStates() throws {
        try Self.withRoot { root in
            let (bytes, history) = try Self.primaryImage(root)
            let io = PosixIO()
            let checkpointName = CheckpointFormat.fileName(lsn: LSN(20))

            // Before the commit point: a staging dir with everything in it is discarded.
            let a = root + "/a"
            try Self.localState(a)
            try io.createDirectory(a + "/" + ReseedInstall.stagingName)
            let staged = try io.open(a + "/" + ReseedInstall.stagingName + "/" + checkpointName, create: true)
            try staged.writeAll(bytes, at: 0)
            staged.close()
            try AuthorityFile.write(Self.replicaAuthority(history), directory: a + "/" + ReseedInstall.stagingName, io: io)
            try ReseedInstall.finishPending(directory: a)
            #expect(!io.exists(a + "/" + ReseedInstall.stagingName))
            do {
                let engine = try StorageEngine.open(directory: a)
                defer { engine.close() }
                #expect(engine.get("mine") == Array("local".utf8) && engine.authority.role == .primary)
            }

            // After the commit point, before applying: rolled forward.
            let b = root + "/b"
            try Self.localState(b)
            try io.createDirectory(b + "/" + ReseedInstall.readyName)
            let ready = try io.open(b + "/" + ReseedInstall.readyName + "/" + checkpointName, create: true)
            try ready.writeAll(bytes, at: 0)
            ready.close()
            try AuthorityFile.write(Self.replicaAuthority(history), directory: b + "/" + ReseedInstall.readyName, io: io)
            try ReseedInstall.finishPending(directory: b)
            try ReseedInstall.finishPending(directory: b)  // idempotent
            do {
                let engine = try StorageEngine.open(directory: b)
                defer { engine.close() }
                #expect(engine.get("mine") == nil && engine.get("k3") == Array("from n1 3".utf8))
                #expect(engine.authority == Self.replicaAuthority(history))
            }

            // Mid-apply: the checkpoint already moved in, the authority not yet: the moved
            // checkpoint is kept, the authority follows.
            let c = root + "/c"
            try Self.localState(c)
            for name in try io.list(c) where name.hasPrefix("wal-") { try io.remove(c + "/" + name) }
            let moved = try io.open(c + "/" + checkpointName, create: true)
            try moved.writeAll(bytes, at: 0)
            moved.close()
            try io.createDirectory(c + "/" + ReseedInstall.readyName)
            try AuthorityFile.write(Self.replicaAuthority(history), directory: c + "/" + ReseedInstall.readyName, io: io)
            try ReseedInstall.finishPending(directory: c)
            do {
                let engine = try StorageEngine.open(directory: c)
                defer { engine.close() }
                #expect(engine.get("k19") == Array("from n1 19".utf8) && engine.durableLSN == LSN(20))
                #expect(engine.authority.role == .replica)
            }
        }
    }
}

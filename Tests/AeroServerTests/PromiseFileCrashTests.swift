import AeroCore
import AeroStorage
import AeroTestSupport
import Testing

@testable import AeroServer

/// C2 through the StorageIO seam: the epoch promise (`promotion-claim.json`) is replaced with
/// `StorageIO.replaceDurably`, so a crash at any of its writes and syncs leaves the old promise
/// or the new one, never a damaged file or none; and a promise that was answered is durable.
@Suite struct PromiseFileCrashTests {
    static let old = EpochPromise(epoch: Epoch(2), candidate: NodeID("a"))
    static let new = EpochPromise(epoch: Epoch(3), candidate: NodeID("b"))

    /// A file system holding the old promise, durably, and the counts of writes and syncs so far.
    static func withOldPromise() throws -> (fs: SimulatedFileSystem, writes: Int, syncs: Int) {
        let fs = SimulatedFileSystem()
        try fs.createDirectory("/data")
        let claims = try PromotionClaimFile(directory: "/data", io: fs)
        #expect(claims.promise(old.epoch, to: old.candidate, nodeEpoch: Epoch(1)) == nil)
        return (fs, fs.writes, fs.syncs)
    }

    /// The promise a restarted node reads from what survived.
    static func survivor(_ fs: SimulatedFileSystem) throws -> EpochPromise? {
        try PromotionClaimFile(directory: "/data", io: fs.crashImage()).promise
    }

    @Test func aCrashAtEveryWriteAndSyncLeavesTheOldPromiseOrTheNewOne() throws {
        // How many writes and syncs the new promise takes, without faults.
        let (clean, writes0, syncs0) = try Self.withOldPromise()
        let cleanClaims = try PromotionClaimFile(directory: "/data", io: clean)
        #expect(cleanClaims.promise(Self.new.epoch, to: Self.new.candidate, nodeEpoch: Epoch(1)) == nil)
        #expect(try Self.survivor(clean) == Self.new, "C2: an answered promise is durable")
        let writes = clean.writes - writes0
        let syncs = clean.syncs - syncs0
        #expect(writes >= 1 && syncs >= 2, "the file and its directory are synced (\(writes) writes, \(syncs) syncs)")

        var cases: [(String, (Int, Int) -> SimulatedFileSystem.Fault)] = []
        for n in 1...writes {
            cases.append(("lost-unsynced@write\(n)", { w, _ in .lostUnsynced(w + n) }))
            cases.append(("torn@write\(n)", { w, _ in .tornWrite(w + n) }))
            cases.append(("short@write\(n)", { w, _ in .shortWrite(w + n) }))
        }
        for n in 1...syncs { cases.append(("failed-sync@sync\(n)", { _, s in .failSync(s + n) })) }
        for (name, fault) in cases {
            let (fs, w, s) = try Self.withOldPromise()
            let claims = try PromotionClaimFile(directory: "/data", io: fs)
            fs.fault = fault(w, s)
            let refusal = claims.promise(Self.new.epoch, to: Self.new.candidate, nodeEpoch: Epoch(1))
            #expect(fs.faultFired, "\(name): the fault was reached")
            fs.crash()  // the process dies here, whatever the answer was
            let after = try Self.survivor(fs)
            #expect(after == Self.old || after == Self.new, "\(name): \(after.map { "\($0)" } ?? "no promise") survived")
            if refusal == nil {
                #expect(after == Self.new, "\(name): the promise was answered, so it must be durable (C2)")
            } else {
                #expect(claims.promise == Self.old, "\(name): a refused promise is not held in memory")
            }
        }
    }
}

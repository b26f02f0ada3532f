import AeroCore
import AeroTestSupport
@testable import AeroStorage
import Testing

/// A segment file named for LSN 0 (`wal-00000000000000000000.log`, e.g. a damaged or hand-made
/// copy) is damage naming the file, not an arithmetic trap in recovery or `wal inspect` (R2).
@Suite struct SegmentNamedLSNZeroTests {
    @Test func aSegmentNamedForLSNZeroIsDamageNotATrap() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 3)
        let path = try segmentPaths(fs)[0]
        let zeroName = "wal-00000000000000000000.log"
        fs.setBytes("/d/" + zeroName, fs.bytes(path)!)
        try fs.remove(path)
        expectDamage(fs, .lsnGap, RuleID.storageRecoveryLsnGap, segment: zeroName, offset: 0, lsn: LSN(1))
        let inspected = try StorageEngine.inspect(directory: "/d", io: fs)
        #expect(inspected.report.damage?.segment == zeroName)
    }
}

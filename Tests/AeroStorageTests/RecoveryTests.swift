import AeroCore
import AeroTestSupport
@testable import AeroStorage
import Foundation
import Testing

/// Commits `count` single-key transactions k0..k(count-1) = v0.. and closes.
func populate(_ fs: SimulatedFileSystem, count: Int, segmentBytes: UInt64 = 64 << 20, authority: Authority? = nil) throws {
    var options = simOptions(fs, segmentBytes: segmentBytes)
    if let authority { options.initialAuthority = authority }
    let engine = try StorageEngine.open(directory: "/d", options: options)
    for i in 0..<count { _ = try engine.commitBlocking(put(("k\(i)", "v\(i)"))) }
    engine.close()
}

func segmentPaths(_ fs: SimulatedFileSystem) throws -> [String] {
    try fs.list("/d").filter { WALFormat.segmentFirstLSN($0) != nil }.sorted().map { "/d/" + $0 }
}

/// Byte offsets of the records in a segment.
func recordOffsets(_ bytes: [UInt8]) -> [Int] {
    var offsets: [Int] = []
    var o = WALFormat.segmentHeaderBytes
    while o < bytes.count, case .success(let (_, size)) = bytes.withUnsafeBytes({ WALRecord.decode($0, at: o) }) {
        offsets.append(o)
        o += size
    }
    return offsets
}

/// Opens the directory and expects it refused with damage of `kind`, carrying the registry id `rule`.
func expectDamage(_ fs: SimulatedFileSystem, _ kind: WALDamage.Kind, _ rule: RuleID, segment: String? = nil, offset: UInt64? = nil, lsn: LSN? = nil) {
    do {
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        engine.close()
        Issue.record("open succeeded; expected \(kind)")
    } catch StorageError.damaged(let damage) {
        #expect(damage.kind == kind)
        #expect(damage.ruleID == rule.rawValue && damage.description.hasPrefix("[\(rule.rawValue)]"))
        if let segment { #expect(damage.segment == segment) }
        if let offset { #expect(damage.offset == offset) }
        if let lsn { #expect(damage.lsn == lsn) }
        #expect(damage.description.contains(damage.segment) && damage.description.contains("LSN"))
    } catch {
        Issue.record("unexpected error \(error)")
    }
}

@Suite struct RecoveryTests {
    @Test func tornTailIsTruncatedReportedAndRecoveryIsIdempotent() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 5)
        let path = try segmentPaths(fs)[0]
        let bytes = fs.bytes(path)!
        // Cut the last record in the middle (the zero-filled preallocation goes with it).
        fs.setBytes(path, Array(bytes.prefix(recordOffsets(bytes)[4] + 10)))
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        let torn = try #require(engine.recoveryReport.tornTail)
        #expect(torn.segment == "wal-00000000000000000001.log" && torn.offset == UInt64(recordOffsets(bytes)[4]))
        #expect(engine.durableLSN == LSN(4) && engine.get("k4") == nil && text(engine.get("k3")) == "v3")
        engine.close()
        // Recovery again (after a crash right after recovery) gives the same state, no tail.
        let again = try StorageEngine.open(directory: "/d", options: simOptions(fs.crashImage()))
        defer { again.close() }
        #expect(again.recoveryReport.tornTail == nil && again.durableLSN == LSN(4) && text(again.get("k3")) == "v3")
        // New writes continue at the next LSN.
        #expect(try again.commitBlocking(put(("k4", "w"))) == LSN(5))
    }

    @Test func aTornRecordFollowedByZeroFilledSpaceIsATornTail() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 5)
        let path = try segmentPaths(fs)[0]
        var bytes = fs.bytes(path)!
        let offsets = recordOffsets(bytes)
        #expect(bytes.count > offsets[4] + 100)  // preallocated
        for i in offsets[4] + 10..<offsets[4] + 30 { bytes[i] = 0 }
        fs.setBytes(path, bytes)
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        defer { engine.close() }
        #expect(engine.recoveryReport.tornTail?.offset == UInt64(offsets[4]))
        #expect(engine.durableLSN == LSN(4))
        #expect(try engine.commitBlocking(put(("k4", "again"))) == LSN(5))
    }

    @Test func checksumFailureBeforeTheTailStopsTheOpen() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 5)
        let path = try segmentPaths(fs)[0]
        var bytes = fs.bytes(path)!
        let offsets = recordOffsets(bytes)
        bytes[offsets[1] + WALFormat.recordHeaderBytes] ^= 0x40
        fs.setBytes(path, bytes)
        expectDamage(fs, .corruptRecord, RuleID.storageRecoveryCorruptRecord, segment: "wal-00000000000000000001.log", offset: UInt64(offsets[1]), lsn: LSN(2))
        // A damaged length field: later records are found by scanning, still damage.
        var bytes2 = fs.bytes(path)!
        bytes2[offsets[1] + WALFormat.recordHeaderBytes] ^= 0x40
        bytes2[offsets[2]] ^= 0xFF
        fs.setBytes(path, bytes2)
        expectDamage(fs, .corruptRecord, RuleID.storageRecoveryCorruptRecord, offset: UInt64(offsets[2]), lsn: LSN(3))
    }

    @Test func aMissingSegmentIsAnLSNGap() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 30, segmentBytes: 300)
        let segments = try segmentPaths(fs)
        #expect(segments.count >= 3)
        try fs.remove(segments[1])
        let expectedLSN = WALFormat.segmentFirstLSN(String(segments[1].dropFirst(3)))!
        expectDamage(fs, .lsnGap, RuleID.storageRecoveryLsnGap, segment: String(segments[2].dropFirst(3)), lsn: expectedLSN)
    }

    @Test func theFirstSegmentMissingIsAnLSNGap() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 30, segmentBytes: 300)
        try fs.remove(try segmentPaths(fs)[0])
        expectDamage(fs, .lsnGap, RuleID.storageRecoveryLsnGap, lsn: LSN(1))
    }

    @Test func anEpochGoingBackwardsStopsTheOpen() throws {
        let fs = SimulatedFileSystem()
        let authority = Authority(nodeID: "n1", role: .primary, epoch: Epoch(3), following: nil,
                                  history: [EpochHistoryEntry(epoch: Epoch(3), primary: "n1", startLSN: LSN(1))])
        try populate(fs, count: 0, authority: authority)
        var segment = WALFormat.encodeSegmentHeader(firstLSN: LSN(1), nodeID: "n1")
        let payload = TransactionCodec.encode([.put(key: "a", value: [1])])
        WALRecord(kind: .transaction, epoch: Epoch(2), lsn: LSN(1), payload: payload).encode(into: &segment)
        let offset = segment.count
        WALRecord(kind: .transaction, epoch: Epoch(1), lsn: LSN(2), payload: payload).encode(into: &segment)
        WALRecord(kind: .transaction, epoch: Epoch(2), lsn: LSN(3), payload: payload).encode(into: &segment)
        fs.setBytes("/d/" + WALFormat.segmentName(firstLSN: LSN(1)), segment)
        expectDamage(fs, .epochBackwards, RuleID.storageRecoveryEpochBackwards, offset: UInt64(offset), lsn: LSN(2))
    }

    @Test func aWALAheadOfTheAuthorityEpochStopsTheOpen() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 0)
        var segment = WALFormat.encodeSegmentHeader(firstLSN: LSN(1), nodeID: "local")
        WALRecord(kind: .epochStart, epoch: Epoch(5), lsn: LSN(1), payload: []).encode(into: &segment)
        fs.setBytes("/d/" + WALFormat.segmentName(firstLSN: LSN(1)), segment)
        expectDamage(fs, .authorityBehindWAL, RuleID.storageRecoveryAuthorityBehindWal, lsn: LSN(1))
    }

    @Test func aCorruptCheckpointStopsTheOpen() async throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        for i in 0..<5 { _ = try await engine.commit(put(("k\(i)", "v"))) }
        let lsn = try await engine.checkpoint()
        engine.close()
        let path = "/d/" + CheckpointFormat.fileName(lsn: lsn)
        var bytes = fs.bytes(path)!
        bytes[bytes.count / 2] ^= 1
        fs.setBytes(path, bytes)
        expectDamage(fs, .corruptCheckpoint, RuleID.storageRecoveryCorruptCheckpoint, segment: CheckpointFormat.fileName(lsn: lsn), lsn: lsn)
    }

    @Test func aTornSegmentHeaderAtTheTailIsRemoved() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 3)
        let header = WALFormat.encodeSegmentHeader(firstLSN: LSN(4), nodeID: "local")
        fs.setBytes("/d/" + WALFormat.segmentName(firstLSN: LSN(4)), Array(header.prefix(50)))
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        defer { engine.close() }
        #expect(engine.recoveryReport.tornTail?.removeSegment == true)
        #expect(!fs.exists("/d/" + WALFormat.segmentName(firstLSN: LSN(4))))
        #expect(try engine.commitBlocking(put(("x", "y"))) == LSN(4))
    }

    @Test func walWithoutAnAuthorityFileIsRefused() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 2)
        try fs.remove("/d/authority.json")
        do {
            try StorageEngine.open(directory: "/d", options: simOptions(fs)).close()
            Issue.record("a WAL without its authority file was opened")
        } catch let error as StorageError {
            #expect(error.ruleID == RuleID.storageAuthorityRefused.rawValue, "\(error)")
        }
    }

    @Test func aDamagedSegmentHeaderBeforeTheTailStopsTheOpen() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 30, segmentBytes: 300)
        let segments = try segmentPaths(fs)
        #expect(segments.count >= 3)
        var bytes = fs.bytes(segments[1])!
        bytes[20] ^= 0x01  // inside the header, covered by its CRC
        fs.setBytes(segments[1], bytes)
        expectDamage(fs, .badSegmentHeader, RuleID.storageRecoveryBadSegmentHeader, segment: String(segments[1].dropFirst(3)))
    }

    @Test func leftoverTemporaryFilesAreRemoved() throws {
        let fs = SimulatedFileSystem()
        try populate(fs, count: 2)
        fs.setBytes("/d/checkpoint-00000000000000000002.ckpt.tmp", [1, 2, 3])
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        defer { engine.close() }
        #expect(engine.recoveryReport.removedTemporaryFiles == ["checkpoint-00000000000000000002.ckpt.tmp"])
        #expect(engine.durableLSN == LSN(2))
    }
}

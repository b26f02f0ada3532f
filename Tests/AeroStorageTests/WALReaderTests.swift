import AeroCore
import AeroTestSupport
@testable import AeroStorage
import Testing

/// readWAL bounds a record's stated length before it reads (allocates) that many bytes.
@Suite struct WALReaderTests {
    @Test func aCorruptLengthIsDamageBeforeAnythingOfThatSizeIsRead() throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        defer { engine.close() }
        for i in 0..<3 { _ = try engine.commitBlocking(put(("k\(i)", "v\(i)"))) }
        #expect(records(try engine.readWAL(from: LSN(1))).count == 3)

        let segment = "/d/" + WALFormat.segmentName(firstLSN: LSN(1))
        var bytes = fs.bytes(segment)!
        let second = recordOffsets(bytes)[1]
        for (i, b) in [UInt8](repeating: 0xFF, count: 4).enumerated() { bytes[second + i] = b }  // length 4 GiB − 1
        fs.setBytes(segment, bytes)
        do {
            _ = try engine.readWAL(from: LSN(1))
            Issue.record("a corrupt length must be damage")
        } catch StorageError.damaged(let damage) {
            #expect(damage.kind == .corruptRecord && damage.lsn == LSN(2) && damage.offset == UInt64(second))
            #expect(damage.detail.contains("states a length of 4294967295 bytes"), "\(damage.detail)")
        }
    }

    /// Two replicas in step read the same records in turn: each resumes at its own cursor and
    /// never rescans the segment from its start. Record 1 is damaged after both passed it, so a
    /// rescan would report damage (one shared cursor did: the other reader had just moved it).
    @Test func twoReadersInTurnEachResumeAtTheirOwnCursor() throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(fs))
        defer { engine.close() }
        for i in 0..<5 { _ = try engine.commitBlocking(put(("k\(i)", "v\(i)"))) }
        // Reader A and reader B each take record 1, then A takes record 2.
        #expect(records(try engine.readWAL(from: LSN(1), bytesMax: 1)).map(\.lsn) == [LSN(1)])
        #expect(records(try engine.readWAL(from: LSN(1), bytesMax: 1)).map(\.lsn) == [LSN(1)])
        #expect(records(try engine.readWAL(from: LSN(2), bytesMax: 1)).map(\.lsn) == [LSN(2)])

        let segment = "/d/" + WALFormat.segmentName(firstLSN: LSN(1))
        var bytes = fs.bytes(segment)!
        let first = recordOffsets(bytes)[0]
        for i in 0..<4 { bytes[first + i] = 0xFF }
        fs.setBytes(segment, bytes)

        // B continues at record 2 (its cursor), A at record 3: neither reads record 1 again.
        #expect(records(try engine.readWAL(from: LSN(2), bytesMax: 1)).map(\.lsn) == [LSN(2)])
        #expect(records(try engine.readWAL(from: LSN(3))).map(\.lsn) == [LSN(3), LSN(4), LSN(5)])
        #expect(records(try engine.readWAL(from: LSN(3))).map(\.lsn) == [LSN(3), LSN(4), LSN(5)])
        // A read from the start does scan record 1, and finds it damaged.
        #expect(throws: StorageError.self) { _ = try engine.readWAL(from: LSN(1)) }
    }
}

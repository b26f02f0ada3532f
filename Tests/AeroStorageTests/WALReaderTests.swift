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
}

import AeroCore
import AeroTestSupport
import Foundation
import Testing
@testable import AeroStorage

/// A promotion makes the authority file (role primary, epoch E+1) and the epoch-start record
/// under one hold of the engine's lock: local commits racing it are refused until the role is
/// primary and then take the LSNs after the epoch-start record — never LSN `start` itself (found
/// in review: the record was appended in a second locked section, and a commit in between
/// tripped "a record overtook the promotion", stopping the new primary mid-promotion).
@Suite(.serialized) struct PromotionUnderCommitsTests {
    final class Flag: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        var isSet: Bool { lock.withLock { value } }
        func set() { lock.withLock { value = true } }
    }

    /// The writers stop when the promotion returns, or at the latest after this long.
    static let writersFor = Duration.seconds(30)

    @Test(arguments: 0..<10)
    func commitsRacingAPromotionComeAfterTheEpochStart(round: Int) async throws {
        let fs = SimulatedFileSystem()
        let engine = try StorageEngine.open(directory: "/r", options: replicaOptions(fs))
        defer { engine.close() }
        try adopt(engine, .standalonePrimary("n1"))
        let payload = TransactionCodec.encode([.put(key: "a", value: [1])])
        _ = try await engine.appendReplicated([WALRecord(kind: .transaction, epoch: Epoch(1), lsn: LSN(1), payload: payload)])

        let stop = Flag()
        let writers = DispatchGroup()
        for writer in 0..<2 {
            DispatchQueue.global().async(group: writers) {
                // Bounded by a monotonic deadline in case the promotion never returns.
                let deadline = ContinuousClock.now + Self.writersFor
                var attempt = 0
                while !stop.isSet && ContinuousClock.now < deadline {
                    attempt += 1
                    // Refused while a replica: a short pause so the promotion and the flusher
                    // get the lock too (the race is at the moment the role changes).
                    if (try? engine.commitBlocking(put(("w\(writer)", "\(attempt)")))) == nil { usleep(20) }
                }
            }
        }
        let entry = try await engine.promote(to: Epoch(2))
        stop.set()
        writers.wait()
        #expect(entry.startLSN == LSN(2), "round \(round)")
        let log = records(try engine.readWAL(from: LSN(2)))
        #expect(log.first?.kind == .epochStart && log.first?.lsn == entry.startLSN, "round \(round)")
        #expect(log.dropFirst().allSatisfy { $0.epoch == Epoch(2) && $0.kind == .transaction }, "round \(round)")
    }
}

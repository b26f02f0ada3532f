import AeroTestSupport
import AeroCore
@testable import AeroStorage
import Foundation
import Testing

/// Property test: random commits (puts, deletes, compare-and-set), snapshots taken and released
/// at random, reads and prefix scans from every live snapshot — all checked against a model that
/// keeps the whole state after every LSN. Seeded (AERODB_TEST_SEED), seed printed.
@Suite struct SnapshotIsolationTests {
    @Test func snapshotsMatchTheModelAtTheirLSN() async throws {
        let seed = testSeed("SnapshotIsolationTests")
        var random = SeededRandom(seed: seed)
        let engine = try StorageEngine.open(directory: "/d", options: simOptions(SimulatedFileSystem()))
        defer { engine.close() }
        var states: [[String: [UInt8]]] = [[:]]
        var live: [Snapshot] = []
        let keys = (0..<12).map { "p\($0 % 3)/k\($0)" }
        func value() -> [UInt8] { (0..<(1 + random.next(below: 6))).map { _ in UInt8(random.next(below: 256)) } }

        for step in 0..<1500 {
            switch random.next(below: 10) {
            case 0..<5:
                var t = Transaction()
                var model = states.last!
                for _ in 0..<(1 + random.next(below: 3)) {
                    let key = keys[random.next(below: keys.count)]
                    if random.next(below: 4) == 0 {
                        t.delete(key)
                        model[key] = nil
                    } else {
                        let v = value()
                        t.put(key, v)
                        model[key] = v
                    }
                }
                var holds = true
                if random.next(below: 3) == 0 {
                    let key = keys[random.next(below: keys.count)]
                    let expected = random.next(below: 2) == 0 ? states.last![key] : value()
                    t.expect(key, equals: expected)
                    holds = states.last![key] == expected
                }
                do {
                    let lsn = try await engine.commit(t)
                    #expect(holds, "step \(step): commit succeeded although its precondition did not hold")
                    #expect(lsn.rawValue == UInt64(states.count))
                    states.append(model)
                } catch StorageError.preconditionFailed {
                    #expect(!holds, "step \(step): precondition failed although it held")
                }
            case 5, 6:
                live.append(engine.snapshot())
            case 7:
                if !live.isEmpty { live.remove(at: random.next(below: live.count)) }
            default:
                let snapshots = live + [engine.snapshot()]
                let s = snapshots[random.next(below: snapshots.count)]
                let model = states[Int(s.lsn.rawValue)]
                let key = keys[random.next(below: keys.count)]
                #expect(s.get(key) == model[key], "step \(step): get \(key) at LSN \(s.lsn)")
                let prefix = "p\(random.next(below: 3))/"
                let scanned = s.scan(prefix: prefix)
                let expected = model.filter { $0.key.hasPrefix(prefix) }.sorted { $0.key < $1.key }
                #expect(scanned.map(\.key) == expected.map(\.key) && scanned.map(\.value) == expected.map(\.value),
                        "step \(step): scan \(prefix) at LSN \(s.lsn)")
            }
        }
        // Reclamation: with no snapshot left, every chain is down to one version.
        live.removeAll()
        _ = try await engine.commit(put(("p0/k0", "final")))
        _ = try await engine.checkpoint()
        let chains = engine.versionChainLengthsForTesting()
        #expect(chains.max() ?? 1 == 1)
    }
}

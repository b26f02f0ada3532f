import AeroTestSupport
import AeroCore
@testable import AeroStorage
import Foundation
import Testing

/// Injects every fault kind at every write (and every sync) of a small deterministic workload,
/// then "restarts" from what survived and checks the promises of docs/storage.md:
///   - every acknowledged transaction is present after recovery (unless a bit flip damaged the
///     very last record and recovery reported the truncated tail), nothing half-visible: the
///     recovered state equals the model's state after exactly the recovered LSN;
///   - a silent bit flip is never served as data: the open either reports damage or the state
///     equals the model;
///   - after a failed sync the engine acknowledges nothing more;
///   - recovery is idempotent: recovering the recovered image again gives the same state.
/// Counts of crash points and faults tried are printed (and recorded in docs/reliability.md).
@Suite struct FaultInjectionTests {
    /// The workload: transactions in order; a nil entry is a checkpoint request.
    static func workload() -> [Transaction?] {
        var steps: [Transaction?] = []
        for i in 0..<24 {
            var t = Transaction()
            t.put("k\(i % 5)", Array("value-\(i)-".utf8) + [UInt8](repeating: UInt8(i), count: i * 3))
            t.put("log/\(i)", Array("\(i)".utf8))
            if i % 6 == 5 { t.delete("k\((i + 2) % 5)") }
            if i == 9 { t.expect("log/8", equals: Array("8".utf8)) }
            if i == 13 { t.expect("log/8", equals: nil) }  // fails: nothing written
            steps.append(t)
            if i == 11 || i == 19 { steps.append(nil) }
        }
        return steps
    }

    /// The model: state after each LSN (index = LSN).
    static func modelStates() -> [[String: [UInt8]]] {
        var states: [[String: [UInt8]]] = [[:]]
        for case let t? in workload() {
            var s = states.last!
            if t.preconditions.contains(where: { if case .valueEquals(let k, let v) = $0 { return s[k] != v }; return false }) { continue }
            for m in t.mutations {
                switch m {
                case .put(let k, let v): s[k] = v
                case .delete(let k): s[k] = nil
                }
            }
            states.append(s)
        }
        return states
    }

    struct Outcome {
        var acked: [LSN] = []
        var failedAfterSyncError = false
    }

    /// Runs the workload until it completes or the simulated process dies.
    static func run(_ fs: SimulatedFileSystem) -> Outcome {
        var outcome = Outcome()
        var options = simOptions(fs, segmentBytes: 600)
        options.initialAuthority = .standalonePrimary("n1")
        guard let engine = try? StorageEngine.open(directory: "/d", options: options) else { return outcome }
        var walFailed = false
        for step in workload() {
            if fs.crashed { break }
            guard let t = step else {
                _ = try? engine.checkpointBlocking()
                continue
            }
            do {
                let lsn = try engine.commitBlocking(t)
                if walFailed { outcome.failedAfterSyncError = true }
                outcome.acked.append(lsn)
            } catch let e as StorageError {
                if e.ruleID == "storage.wal.failed" { walFailed = true }
            } catch {
                Issue.record("unexpected error \(error)")
            }
        }
        engine.close()
        return outcome
    }

    static func stateOf(_ engine: StorageEngine) -> [String: [UInt8]] {
        Dictionary(uniqueKeysWithValues: engine.snapshot().scan(prefix: "").map { ($0.key, $0.value) })
    }

    /// Recovers `image` and checks it against the model; returns a description of a violation.
    static func check(_ image: SimulatedFileSystem, outcome: Outcome, fault: SimulatedFileSystem.Fault, states: [[String: [UInt8]]]) -> String? {
        var options = simOptions(image, segmentBytes: 600)
        options.initialAuthority = .standalonePrimary("n1")
        let engine: StorageEngine
        do {
            engine = try StorageEngine.open(directory: "/d", options: options)
        } catch {
            // Only a silent bit flip may make the directory unusable; then the error must say so.
            if case .bitFlip = fault, let e = error as? StorageError, ["storage.recovery.corrupt-record", "storage.recovery.bad-segment-header",
                "storage.recovery.corrupt-checkpoint", "storage.authority.refused", "storage.recovery.lsn-gap"].contains(e.ruleID) {
                return nil
            }
            return "open failed: \(error)"
        }
        defer { engine.close() }
        let recovered = Int(engine.durableLSN.rawValue)
        guard recovered < states.count else { return "recovered LSN \(recovered) beyond the workload" }
        if stateOf(engine) != states[recovered] { return "state at LSN \(recovered) differs from the model" }
        let maxAcked = Int(outcome.acked.last?.rawValue ?? 0)
        if recovered < maxAcked {
            guard case .bitFlip = fault, engine.recoveryReport.tornTail != nil else {
                return "acknowledged LSN \(maxAcked) lost (recovered \(recovered))"
            }
        }
        if outcome.failedAfterSyncError { return "a commit was acknowledged after a failed sync" }
        // Idempotence: crash right after recovery, recover again.
        engine.close()
        guard let again = try? StorageEngine.open(directory: "/d", options: { var o = options; o.io = image.crashImage(); return o }()) else {
            return "second recovery failed"
        }
        defer { again.close() }
        if again.durableLSN.rawValue != UInt64(recovered) || stateOf(again) != states[recovered] || again.recoveryReport.tornTail != nil {
            return "second recovery differs"
        }
        return nil
    }

    @Test func everyFaultAtEveryWriteKeepsThePromises() throws {
        let states = Self.modelStates()
        let clean = SimulatedFileSystem()
        let cleanOutcome = Self.run(clean)
        #expect(cleanOutcome.acked.count == states.count - 1)
        let writes = clean.writes
        let syncs = clean.syncs
        #expect(Self.check(clean.crashImage(), outcome: cleanOutcome, fault: .none, states: states) == nil)

        var faults: [SimulatedFileSystem.Fault] = []
        for n in 1...writes { faults += [.lostUnsynced(n), .tornWrite(n), .shortWrite(n), .bitFlip(n)] }
        for n in 1...syncs { faults.append(.failSync(n)) }
        var violations: [String] = []
        var fired = 0
        for (i, fault) in faults.enumerated() {
            let fs = SimulatedFileSystem()
            fs.fault = fault
            fs.random = SeededRandom(seed: UInt64(i + 1))
            let outcome = Self.run(fs)
            if fs.faultFired { fired += 1 }
            fs.crash()
            if let v = Self.check(fs.crashImage(), outcome: outcome, fault: fault, states: states) {
                violations.append("\(fault): \(v)")
            }
        }
        print("[FaultInjectionTests] workload: \(writes) writes, \(syncs) syncs; faults tried \(faults.count), fired \(fired), violations \(violations.count)")
        #expect(fired == faults.count)
        #expect(violations.isEmpty, "\(violations.prefix(10))")
    }
}

import AeroCore
import AeroServer
import AeroStorage
import Foundation
import Testing

/// A journal that cannot be written (its file is /dev/full: every write fails with ENOSPC) never
/// loses an event unseen: a refusal whose journal write fails answers NODE-STORAGE-FAILED, an event
/// that must not fail its action is counted, and both show on /metrics
/// (aerodb_journal_write_failures_total).
@Suite struct JournalWriteFailureTests {
    final class Node {
        let dir: String
        let engine: StorageEngine
        let journal: EventJournal
        let metrics = ServerMetrics(replicas: [])
        let service: KVService

        init(authority: Authority) throws {
            dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-journal-full-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + EventJournal.fileName, withDestinationPath: "/dev/full")
            var options = StorageOptions()
            options.initialAuthority = authority
            engine = try StorageEngine.open(directory: dir, options: options)
            journal = try EventJournal(directory: dir, node: "n1")
            let config = ServerConfig.standalone(id: "n1", dataDir: dir, http: HostPort(host: "127.0.0.1", port: 0))
            service = KVService(config: config, engine: engine, journal: journal, metrics: metrics, primaryHooks: nil)
        }

        /// The value of aerodb_journal_write_failures_total on /metrics.
        func journalFailuresOnMetrics() -> Int? {
            let text = service.metricsText().bodyText
            let line = text.split(separator: "\n").first { $0.hasPrefix("aerodb_journal_write_failures_total ") }
            return line.flatMap { Int($0.split(separator: " ").last ?? "") }
        }

        deinit {
            engine.close()
            try? journal.close()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    @Test func aRefusalWhoseJournalWriteFailsIsAStorageFailure() async throws {
        let node = try Node(authority: .newReplica("n1", following: "n2"))
        #expect(node.journalFailuresOnMetrics() == 0)
        let response = await node.service.put(key: "k", value: [1])
        #expect(response.status == 500 && KVServiceTests.code(response) == RuleID.nodeStorageFailed.rawValue, "\(response.bodyText)")
        #expect(response.bodyText.contains(RuleID.replWriteOnReplica.rawValue), "the answer names the refusal that could not be journaled")
        #expect(node.journal.failedAppends == 1)
        #expect(node.journalFailuresOnMetrics() == 1)
    }

    @Test func anEventThatMustNotFailItsActionIsCountedNotDropped() throws {
        let node = try Node(authority: .standalonePrimary("n1"))
        let first = node.journal.record("fenced", fields: ["epoch": .integer(1)], durability: .sync)
        #expect(first?.message.contains("No space left") == true, "\(String(describing: first))")
        // Sticky (rule 4): later appends are refused, and counted too.
        #expect(node.journal.record("unfenced", fields: [:], durability: .lazy) != nil)
        #expect(node.journal.recordRefusal(.staleEpoch(node: "n1", nodeEpoch: Epoch(1), seenEpoch: Epoch(2), seenFrom: "n2")) != nil)
        #expect(node.journal.failedAppends == 3)
        #expect(node.journalFailuresOnMetrics() == 3)
        // A scrape copies increments only: a second one does not count them again.
        #expect(node.journalFailuresOnMetrics() == 3)
    }
}

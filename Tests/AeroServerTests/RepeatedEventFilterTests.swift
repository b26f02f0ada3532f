@testable import AeroServer
import Testing

@Suite("Repeated replication events in the journal")
struct RepeatedEventFilterTests {
    typealias Filter = RepeatedEventFilter

    @Test("the first occurrence is journaled, then every journalEvery-th with its count")
    func firstThenEveryNth() {
        var filter = Filter()
        var journaled: [Int] = []
        for _ in 0..<(Filter.journalEvery * 2 + 1) {
            if let occurrence = filter.occurrence(of: "refused REPL-DIVERGED n2 …") { journaled.append(occurrence) }
        }
        #expect(journaled == [1, Filter.journalEvery, Filter.journalEvery * 2])
    }

    @Test("a different refusal is never hidden behind a repeating one")
    func aNewKeyIsAlwaysJournaled() {
        var filter = Filter()
        #expect(filter.occurrence(of: "a") == 1)
        #expect(filter.occurrence(of: "a") == nil)
        #expect(filter.occurrence(of: "b") == 1)
        #expect(filter.occurrence(of: "a") == nil)
        #expect(filter.occurrence(of: "b") == nil)
    }

    @Test("reset: after a session that streamed, the next refusal counts as a first")
    func resetStartsOver() {
        var filter = Filter()
        #expect(filter.occurrence(of: "a") == 1)
        #expect(filter.occurrence(of: "a") == nil)
        filter.reset()
        #expect(filter.occurrence(of: "a") == 1)
    }

    @Test("memory is bounded: past keysMax keys the counts start over (journals more, never less)")
    func boundedKeys() {
        var filter = Filter()
        for i in 0..<Filter.keysMax { #expect(filter.occurrence(of: "k\(i)") == 1) }
        #expect(filter.occurrence(of: "k0") == nil)
        #expect(filter.occurrence(of: "one too many") == 1)  // clears the counts first
        #expect(filter.occurrence(of: "k0") == 1)
    }
}

import AeroCore
import AeroServer
import Testing

@Suite("Replica lag in seconds")
struct LagClockTests {
    @Test("the age of the oldest unapplied record, 0 when caught up")
    func ages() {
        let clock = LagClock()
        #expect(clock.lagSeconds(applied: .zero, nowMs: 5_000) == 0)
        clock.durable(LSN(3), atMs: 1_000)
        clock.durable(LSN(7), atMs: 2_000)
        clock.durable(LSN(7), atMs: 2_500)  // a repeat changes nothing
        clock.durable(LSN(9), atMs: 4_000)
        #expect(clock.lagSeconds(applied: .zero, nowMs: 5_000) == 4)
        #expect(clock.lagSeconds(applied: LSN(3), nowMs: 5_000) == 3)
        #expect(clock.lagSeconds(applied: LSN(5), nowMs: 5_000) == 3, "LSN 6 became durable with the batch through 7")
        #expect(clock.lagSeconds(applied: LSN(8), nowMs: 5_000) == 1)
        #expect(clock.lagSeconds(applied: LSN(9), nowMs: 5_000) == 0)
    }

    @Test("beyond the ring, the oldest kept sample gives a lower bound")
    func bounded() {
        let clock = LagClock()
        for i in 1...(LagClock.samplesMax + 10) { clock.durable(LSN(UInt64(i)), atMs: UInt64(i)) }
        let now = UInt64(LagClock.samplesMax + 1_000)
        #expect(clock.lagSeconds(applied: .zero, nowMs: now) == Double(now - 11) / 1000)
        #expect(clock.lagSeconds(applied: LSN(UInt64(LagClock.samplesMax)), nowMs: now) == Double(now - UInt64(LagClock.samplesMax + 1)) / 1000)
    }
}

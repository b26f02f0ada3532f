import CLuaShim
import Glibc
import Testing

/// The sandbox's time budget counts the running thread's CPU time: a thread that does not run
/// (preempted on a loaded host; here: asleep) is not refused for that time, a thread that
/// computes is. The wall-clock deadline is only the cheap first check (aero_lua.h).
@Suite struct TimeBudgetTests {
    static let limitMs: UInt64 = 20

    @Test func timeTheThreadDidNotRunIsNotCharged() {
        var budget = aero_budget()
        aero_start_time_budget(&budget, Self.limitMs)
        let firstDeadlineNs = budget.deadline_ns
        usleep(useconds_t(Self.limitMs * 3 * 1_000))  // wall time passes, CPU time does not
        #expect(aero_time_budget_spent(&budget, aero_monotonic_ns()) == 0)
        // The wall deadline moved to the earliest moment the CPU budget could run out.
        #expect(budget.deadline_ns > firstDeadlineNs)
        #expect(budget.deadline_ns > aero_monotonic_ns())
    }

    @Test func timeTheThreadComputesIsCharged() {
        var budget = aero_budget()
        aero_start_time_budget(&budget, Self.limitMs)
        #expect(aero_time_budget_spent(&budget, aero_monotonic_ns()) == 0)
        let startNs = aero_thread_cpu_ns()
        var spin: UInt64 = 0
        while aero_thread_cpu_ns() - startNs < (Self.limitMs + 5) * 1_000_000 { spin &+= 1 }
        #expect(spin > 0)
        #expect(aero_time_budget_spent(&budget, aero_monotonic_ns()) == 1)
    }

    @Test func withinTheWallDeadlineTheCPUClockIsNotRead() {
        var budget = aero_budget()
        aero_start_time_budget(&budget, Self.limitMs)
        // A start far in the past would make the CPU check say "spent"; within the wall
        // deadline the check must not get that far.
        budget.cpu_start_ns = 0
        budget.cpu_limit_ns = 1
        #expect(aero_time_budget_spent(&budget, budget.deadline_ns) == 0)
        #expect(aero_time_budget_spent(&budget, budget.deadline_ns + 1) == 1)
    }
}

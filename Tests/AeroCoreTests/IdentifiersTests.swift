import Testing
@testable import AeroCore

@Suite struct IdentifiersTests {
    @Test func lsnAndEpochOrderAndAdvance() {
        #expect(LSN(1) < LSN(2))
        #expect(LSN.zero.next == LSN(1))
        #expect(Epoch(7).successor == Epoch(8))
        #expect(!(Epoch(8) < Epoch(7)))
        #expect(NodeID("a") < NodeID("b"))
    }
}

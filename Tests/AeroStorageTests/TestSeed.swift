import Foundation
/// The seed of a randomised test: AERODB_TEST_SEED if set, else a fresh one; always printed.
func testSeed(_ name: String) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["AERODB_TEST_SEED"].flatMap { UInt64($0) } ?? UInt64.random(in: 1...UInt64.max >> 1)
    print("[\(name)] seed \(seed) (replay with AERODB_TEST_SEED=\(seed))")
    return seed
}

import AeroCore
@testable import AeroStorage
import Foundation
import Testing

/// A new data directory's name is made durable by syncing its parent (StorageIO invariant 3).
@Suite struct NewDataDirectoryTests {
    @Test func parentDirectories() {
        #expect(PosixIO.parentDirectory(of: "/a/b") == "/a")
        #expect(PosixIO.parentDirectory(of: "/a") == "/")
        #expect(PosixIO.parentDirectory(of: "a") == ".")
        #expect(PosixIO.parentDirectory(of: "a/b/") == "a")
        #expect(PosixIO.parentDirectory(of: "/a/b//") == "/a")
    }

    @Test func aNewDataDirectoryOpensOnDisk() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-newdir-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        try PosixIO().createDirectory(root)  // created: its parent is synced (no error)
        try PosixIO().createDirectory(root)  // exists: nothing to do
        let engine = try StorageEngine.open(directory: root + "/data", options: StorageOptions())
        defer { engine.close() }
        #expect(try engine.commitBlocking(put(("k", "v"))) == LSN(1))
    }
}

// PolicyLoaderTests.swift — split from PolicyCheckTests.swift (one suite per file).
import AeroCore
#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import AeroPolicy

@Suite struct PolicyLoaderTests {
    private func temporaryDirectory() throws -> String {
        var template = Array("/tmp/aerodb-policy-loader-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        #expect(made)
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func write(_ path: String, _ bytes: [UInt8]) throws {
        let file = try #require(fopen(path, "wb"))
        defer { fclose(file) }
        #expect(bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) } == bytes.count)
    }

    @Test func aDirectoryContributesItsLuaFilesSortedAndFilesAreTakenAsGiven() throws {
        let directory = try temporaryDirectory()
        try write(directory + "/zeta.lua", Array("return function() end".utf8))
        try write(directory + "/alpha.lua", Array("return function() return 'a' end".utf8))
        try write(directory + "/notes.txt", Array("not a policy".utf8))
        try write(directory + "/single.policy", Array("return function() end".utf8))
        // A language-server definition file beside the policies is not a policy.
        try write(directory + "/aerodb-facts.d.lua", Array("---@meta\nlocal facts = {}".utf8))
        let sources = try PolicyLoader.load(paths: [directory, directory + "/single.policy"])
        #expect(sources.map(\.name) == ["alpha", "zeta", "single.policy"])
        #expect(sources[0].path == directory + "/alpha.lua")
        #expect(sources[0].text == "return function() return 'a' end")
    }

    @Test func problemsNameThePath() throws {
        let directory = try temporaryDirectory()
        #expect(throws: PolicyLoadError(path: directory + "/missing.lua", message: "no such file or directory")) {
            try PolicyLoader.load(paths: [directory + "/missing.lua"])
        }
        try write(directory + "/latin1.lua", [0x2D, 0x2D, 0xE9, 0x0A])
        #expect(throws: PolicyLoadError(path: directory + "/latin1.lua", message: "not valid UTF-8")) {
            try PolicyLoader.load(paths: [directory + "/latin1.lua"])
        }
        try write(directory + "/dup.lua", Array("return function() end".utf8))
        #expect(throws: PolicyLoadError(path: directory + "/dup.lua",
                                        message: "policy name \"dup\" is already used by \(directory)/dup.lua")) {
            try PolicyLoader.load(paths: [directory + "/dup.lua", directory + "/dup.lua"])
        }
    }
}

import AeroCore
import AeroSecurity
import Foundation
import Testing

@Suite("Access tokens")
struct AccessTokenTests {
    @Test("a generated token is well formed, unique, and found only by its own digest")
    func generateAndAuthenticate() {
        let a = AccessToken.generate(), b = AccessToken.generate()
        #expect(a != b && AccessToken.isWellFormed(a) && AccessToken.isWellFormed(b))
        let table = TokenTable([TokenEntry(name: "ops", roles: [.operator], sha256: AccessToken.digest(a))])
        #expect(table.authenticate(a)?.name == "ops")
        #expect(table.authenticate(b) == nil)
        #expect(table.authenticate(String(a.dropLast()) + (a.last == "A" ? "B" : "A")) == nil)
        #expect(table.authenticate("") == nil && table.authenticate(AccessToken.digest(a)) == nil, "the stored digest is not a token")
        #expect(TokenEntry.isValidDigest(AccessToken.digest(a)) && !TokenEntry.isValidDigest("abc"))
    }

    @Test("a token file: first line, surrounding whitespace ignored; anything else named as wrong")
    func readFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-token-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let token = AccessToken.generate()
        try "  \(token)  \n".write(toFile: dir + "/ok", atomically: true, encoding: .utf8)
        #expect(try AccessToken.read(file: dir + "/ok") == token)
        try "password\n".write(toFile: dir + "/bad", atomically: true, encoding: .utf8)
        #expect(throws: SecurityFileError.self) { try AccessToken.read(file: dir + "/bad") }
        do { _ = try AccessToken.read(file: dir + "/missing") } catch { #expect(error.path == dir + "/missing" && error.message.contains("cannot be read")) }
    }
}

// AccessTokens.swift — bearer tokens: how one is made, how the configuration stores it (hashed),
// and how a presented one is checked.
//
// Invariants:
//   1. A node never stores a token, only its SHA-256 (hex); a leaked configuration file does not
//      let anyone in.
//   2. Checking compares digests in constant time over every configured entry, so the time a
//      check takes tells nothing about which entry was close.
//   3. A token is `aerodb_` + 43 base64url characters of 32 random bytes (256 bits); anything
//      else presented is refused before any digest is compared.

import AeroCore
import Crypto
import Foundation

/// One configured token: a name (recorded as the principal), its roles and its digest.
public struct TokenEntry: Hashable, Sendable {
    public var name: String
    public var roles: Set<Role>
    /// SHA-256 of the token text, lowercase hex (64 characters).
    public var sha256: String

    public init(name: String, roles: Set<Role>, sha256: String) {
        precondition(!name.isEmpty && !roles.isEmpty, "a token entry needs a name and a role")
        self.name = name
        self.roles = roles
        self.sha256 = sha256
    }

    /// A name a token may have: 1–64 of [A-Za-z0-9._-] (it is printed in journals and facts).
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D }
    }

    public static func isValidDigest(_ hex: String) -> Bool {
        hex.utf8.count == 64 && hex.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}

public enum AccessToken {
    public static let prefix = "aerodb_"
    static let randomBytes = 32

    /// A new token (invariant 3). Randomness here is key material, never part of a decision.
    public static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<randomBytes).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return prefix + base64URL(bytes)
    }

    /// SHA-256 of the token text, lowercase hex: what the configuration stores (invariant 1).
    public static func digest(_ token: String) -> String {
        SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `token` has the shape `generate` makes (invariant 3).
    public static func isWellFormed(_ token: String) -> Bool {
        guard token.hasPrefix(prefix) else { return false }
        let body = token.utf8.dropFirst(prefix.utf8.count)
        return body.count == 43 && body.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
    }

    /// Reads a token file: one token on its first line (surrounding whitespace ignored).
    public static func read(file path: String) throws(SecurityFileError) -> String {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw SecurityFileError(path: path, message: "cannot be read: \(error.localizedDescription)")
        }
        let token = text.split(whereSeparator: \.isNewline).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard isWellFormed(token) else {
            throw SecurityFileError(path: path, message: "does not hold an AeroDB token (expected \(prefix) and 43 base64url characters on the first line)")
        }
        return token
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// The configured tokens of a node.
public struct TokenTable: Sendable, Hashable {
    public let entries: [TokenEntry]

    public init(_ entries: [TokenEntry]) {
        precondition(Set(entries.map(\.name)).count == entries.count, "token names are unique (checked when the configuration is read)")
        self.entries = entries
    }

    /// The entry whose digest matches `presented`, nil when none does (invariants 2, 3).
    public func authenticate(_ presented: String) -> TokenEntry? {
        guard AccessToken.isWellFormed(presented) else { return nil }
        let digest = Array(AccessToken.digest(presented).utf8)
        var found: TokenEntry?
        for entry in entries {
            let stored = Array(entry.sha256.utf8)
            var difference: UInt8 = stored.count == digest.count ? 0 : 1
            for i in 0..<min(stored.count, digest.count) { difference |= stored[i] ^ digest[i] }
            if difference == 0 && found == nil { found = entry }
        }
        return found
    }
}

/// A credential file that cannot be used: names the file and what is wrong with it.
public struct SecurityFileError: Error, Equatable, Sendable, CustomStringConvertible {
    public let path: String
    public let message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}

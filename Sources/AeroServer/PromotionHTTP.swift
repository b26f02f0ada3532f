// PromotionHTTP.swift — the candidate's calls to other members' HTTP APIs during a promotion:
// status for facts, fence/unfence for a switchover, follow for re-pointing. Every call is
// bounded by a timeout; a call that does not answer is reported as such, never retried here
// (no background retries: a failed step fails the attempt, and the operator asks again).

import AeroCore
import Foundation

enum PeerHTTP {
    struct Reply: Sendable {
        var status: Int
        var json: JSONValue?
        var text: String
    }

    enum Failure: Error, CustomStringConvertible {
        case noAnswer(String)
        var description: String {
            switch self {
            case .noAnswer(let message): message
            }
        }
    }

    /// One request to `address` (host:port); throws `.noAnswer` when nothing came back within
    /// `timeoutMs`. The bound is the client's one deadline over connect, send and receive
    /// (PlainHTTPClient.swift, rule 1), so a peer that accepted the connection but never
    /// answers (a stopped process) holds the caller no longer than `timeoutMs`.
    static func send(_ method: String, _ address: HostPort, _ path: String, body: JSONValue? = nil, timeoutMs: UInt64) async throws(Failure) -> Reply {
        do {
            let reply = try await PlainHTTPClient.send(method, host: address.host, port: address.port, path: path,
                                                       body: body.map { Array($0.canonicalJSON.utf8) },
                                                       contentType: body == nil ? nil : "application/json", timeoutMs: timeoutMs)
            let text = String(decoding: reply.body, as: UTF8.self)
            return Reply(status: reply.status, json: try? JSONParser.parse(text), text: text)
        } catch {
            throw .noAnswer(error.stage == .timeout ? "\(address)\(path): no answer within \(timeoutMs) ms" : "\(address)\(path): \(error.message)")
        }
    }
}

extension JSONValue {
    /// A non-negative integer (LSNs, epochs); nil otherwise.
    var uint64Value: UInt64? {
        if case .integer(let value) = self, value >= 0 { return UInt64(value) }
        return nil
    }
}

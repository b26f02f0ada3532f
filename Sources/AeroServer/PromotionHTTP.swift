// PromotionHTTP.swift — the candidate's calls to other members' HTTP APIs during a promotion:
// status for facts, fence/unfence for a switchover, follow for re-pointing. Every call is
// bounded by a timeout; a call that does not answer is reported as such, never retried here
// (no background retries: a failed step fails the attempt, and the operator asks again).

import AeroCore
import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

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

    /// One request to `address` (host:port); throws `.noAnswer` when nothing came back in time.
    static func send(_ method: String, _ address: HostPort, _ path: String, body: JSONValue? = nil, timeoutMs: UInt64) async throws(Failure) -> Reply {
        guard let url = URL(string: "http://\(address.host):\(address.port)\(path)") else {
            throw .noAnswer("cannot form a URL for \(address)")
        }
        var request = URLRequest(url: url, timeoutInterval: Double(timeoutMs) / 1000)
        request.httpMethod = method
        if let body {
            request.httpBody = Data(body.canonicalJSON.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        do {
            let (data, response) = try await URLSession.shared.data(for: request)
            guard let http = response as? HTTPURLResponse else { throw URLError(.badServerResponse) }
            let text = String(decoding: data, as: UTF8.self)
            return Reply(status: http.statusCode, json: try? JSONParser.parse(text), text: text)
        } catch {
            throw .noAnswer("\(address)\(path): \(error.localizedDescription)")
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

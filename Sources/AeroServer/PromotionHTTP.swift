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

    /// One request to `address` (host:port); throws `.noAnswer` when nothing came back within
    /// `timeoutMs`. The bound is enforced here, by racing the request against a sleep and
    /// cancelling the loser: URLSession's own timeout is an idle timeout, and a peer that
    /// accepted the connection but never answers (a stopped process) would hold it longer.
    static func send(_ method: String, _ address: HostPort, _ path: String, body: JSONValue? = nil, timeoutMs: UInt64) async throws(Failure) -> Reply {
        let result = await withTaskGroup(of: Result<Reply, Failure>?.self) { group -> Result<Reply, Failure> in
            group.addTask {
                do throws(Failure) {
                    return .success(try await sendUnbounded(method, address, path, body: body, timeoutMs: timeoutMs))
                } catch {
                    return .failure(error)
                }
            }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(timeoutMs))
                return Task.isCancelled ? nil : .failure(.noAnswer("\(address)\(path): no answer within \(timeoutMs) ms"))
            }
            var first: Result<Reply, Failure>?
            while first == nil, let next = await group.next() { first = next }
            group.cancelAll()
            return first ?? .failure(.noAnswer("\(address)\(path): no answer"))
        }
        return try result.get()
    }

    private static func sendUnbounded(_ method: String, _ address: HostPort, _ path: String, body: JSONValue?, timeoutMs: UInt64) async throws(Failure) -> Reply {
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

// PeerAdminClient.swift — the one typed client of other members' admin routes, used by the
// promotion coordinator (fence, claim, release, follow, unfence) and by the admin handlers
// (a candidate's promotion state for U2). Every call is one request bounded by the timeout it
// is given (PeerHTTP: one deadline over the whole request); nothing here retries (no background retries:
// a failed step fails the attempt, and the operator asks again).

import AeroCore
import AeroStorage
import Foundation

struct PeerAdminClient: Sendable {
    let config: ServerConfig

    var timeoutMs: UInt64 { config.timeouts.factsGatherTimeoutMs }

    func member(_ id: NodeID) -> MemberConfig? { config.members.first { $0.id == id } }

    /// POST /v1/admin/fence: the primary stops acknowledging writes in `epoch` and promises
    /// `toEpoch` to this candidate; answers its final durable position, or why not.
    func fence(_ primary: NodeID, epoch: Epoch, toEpoch: Epoch, attempt: String) async -> Result<LSN, PeerCallError> {
        guard let member = member(primary) else { return .failure(.notAMember(primary)) }
        let body = JSONValue.object(["epoch": .integer(Int64(epoch.rawValue)), "to_epoch": .integer(Int64(toEpoch.rawValue)),
                                     "candidate": .string(config.id.rawValue), "attempt": .string(attempt)])
        do {
            // The fence waits for the primary's pending commits (each bounded by the sync timeout).
            let reply = try await PeerHTTP.send("POST", member.http, "/v1/admin/fence", body: body,
                                                timeoutMs: timeoutMs + config.timeouts.syncCommitTimeoutMs)
            guard reply.status == 200, let final = reply.json?["final_lsn"]?.uint64Value else {
                return .failure(.refused(primary, Self.message(reply)))
            }
            return .success(LSN(final))
        } catch {
            return .failure(.noAnswer(primary, "\(error)"))
        }
    }

    /// POST /v1/admin/unfence for this attempt only (U6); `candidate_gave_up` tells the primary
    /// not to ask this candidate, still busy with the attempt, whether it runs a promotion (U2).
    func unfence(_ primary: NodeID, epoch: Epoch, attempt: String) async -> PeerCallError? {
        guard let member = member(primary) else { return .notAMember(primary) }
        let body = JSONValue.object(["epoch": .integer(Int64(epoch.rawValue)), "candidate": .string(config.id.rawValue),
                                     "candidate_gave_up": .bool(true), "attempt": .string(attempt)])
        do {
            let reply = try await PeerHTTP.send("POST", member.http, "/v1/admin/unfence", body: body, timeoutMs: timeoutMs)
            return reply.status == 200 ? nil : .refused(primary, Self.message(reply))
        } catch {
            return .noAnswer(primary, "\(error)")
        }
    }

    /// POST /v1/admin/claim: `member` promises `epoch` to this candidate (C1, C2); nil when it did.
    func claim(_ id: NodeID, epoch: Epoch) async -> PeerCallError? {
        await postPromise("/v1/admin/claim", to: id, epoch: epoch)
    }

    /// POST /v1/admin/release: withdraws the promise of `epoch` `member` gave this candidate.
    func release(_ id: NodeID, epoch: Epoch) async -> PeerCallError? {
        await postPromise("/v1/admin/release", to: id, epoch: epoch)
    }

    /// One `{"epoch","candidate"}` request of the epoch claim; nil when answered 200.
    private func postPromise(_ path: String, to id: NodeID, epoch: Epoch) async -> PeerCallError? {
        guard let member = member(id) else { return .notAMember(id) }
        let body = JSONValue.object(["epoch": .integer(Int64(epoch.rawValue)), "candidate": .string(config.id.rawValue)])
        do {
            let reply = try await PeerHTTP.send("POST", member.http, path, body: body, timeoutMs: timeoutMs)
            return reply.status == 200 ? nil : .refused(id, Self.message(reply))
        } catch {
            return .noAnswer(id, "\(error)")
        }
    }

    enum FollowAnswer: Sendable {
        case repointed
        case refused(String)
        case noAnswer(String)
    }

    /// POST /v1/admin/follow: `member` follows this node at `epoch` with `history`.
    func follow(_ id: NodeID, epoch: Epoch, history: [EpochHistoryEntry]) async -> FollowAnswer {
        guard let member = member(id) else { return .refused("\(id) is not a configured member") }
        let body = JSONValue.object([
            "primary": .string(config.id.rawValue), "epoch": .integer(Int64(epoch.rawValue)),
            "history": .array(history.map(\.json)),
        ])
        do {
            let reply = try await PeerHTTP.send("POST", member.http, "/v1/admin/follow", body: body, timeoutMs: timeoutMs)
            return reply.status == 200 ? .repointed : .refused(Self.message(reply))
        } catch {
            return .noAnswer("\(error)")
        }
    }

    struct PromotionState: Sendable {
        var epoch: Epoch
        var running: Bool
        var role: String?
    }

    /// GET /v1/admin/promotion of `id`: its epoch and whether a promotion runs there; or why
    /// there is no such answer (no connection, a timeout, an answer that is not that node's).
    func promotionState(_ id: NodeID) async -> Result<PromotionState, PeerCallError> {
        guard let member = member(id) else { return .failure(.notAMember(id)) }
        let reply: PeerHTTP.Reply
        do {
            reply = try await PeerHTTP.send("GET", member.http, "/v1/admin/promotion", timeoutMs: timeoutMs)
        } catch {
            return .failure(.noAnswer(id, error.description))
        }
        guard reply.status == 200, let node = reply.json, node["node"]?.stringValue == id.rawValue,
              let epoch = node["epoch"]?.uint64Value, let running = node["running"]?.boolValue else {
            return .failure(.noAnswer(id, "answered \(reply.status) with no promotion state of \(id): \(Self.message(reply).prefix(200))"))
        }
        return .success(PromotionState(epoch: Epoch(epoch), running: running, role: node["role"]?.stringValue))
    }

    static func message(_ reply: PeerHTTP.Reply) -> String {
        reply.json?["message"]?.stringValue ?? reply.json?["error"]?["message"]?.stringValue
            ?? reply.text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Why a call to another member did not do what was asked.
enum PeerCallError: Error, Sendable, CustomStringConvertible {
    case notAMember(NodeID)
    case refused(NodeID, String)
    case noAnswer(NodeID, String)

    var description: String {
        switch self {
        case .notAMember(let id): "\(id) is not a configured member"
        case .refused(let id, let message): "\(id) refused: \(message)"
        case .noAnswer(let id, let message): "\(id) did not answer (\(message))"
        }
    }
}

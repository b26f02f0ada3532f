// ClientEpochMiddleware.swift — requests that carry the epoch their client believes in.
//
// A client may send `X-AeroDB-Epoch: E` (the epoch of the last answer it trusted). Rules:
//   CE1 E above this node's epoch: the node learns it is stale (`KVService.learnedHigherEpoch`:
//       no write is accepted or acknowledged after that — an old primary that hears of a newer
//       epoch from a client stops writing exactly as when it hears it from a peer). The request
//       then runs: a write is refused with REPL-STALE-EPOCH, a read is served at this node's
//       durable position with its epoch in the headers (the client sees it is old).
//   CE2 E below this node's epoch on a write (PUT, DELETE, POST): refused with REPL-STALE-EPOCH
//       before anything is written — the client's view of the cluster is out of date.
//   CE3 A malformed value is REQ-BAD-REQUEST. Without the header nothing changes.
// Every refusal is counted and journaled through `KVService.respond`.

import AeroCore
import Hummingbird

struct ClientEpochMiddleware: RouterMiddleware {
    typealias Context = BasicRequestContext
    static let headerName = "X-AeroDB-Epoch"

    let service: KVService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let name = HTTPFields.Element.Name(Self.headerName), let text = request.headers[name] else {
            return try await next(request, context)
        }
        guard let value = UInt64(text), value > 0 else {
            return HTTPServer.render(service.respond(.request(.badRequest, "\(Self.headerName): expected a positive integer epoch, got \"\(text.prefix(32))\"")))
        }
        let claimed = Epoch(value)
        let local = service.engine.currentEpoch
        if claimed > local {
            // Journaled (fsync'd) before anything is answered: an authority event (docs/server.md).
            service.journal.record("higher_epoch_seen", fields: [
                "epoch": .integer(Int64(value)), "node_epoch": .integer(Int64(local.rawValue)), "from": .string("client"),
                "method": .string(request.method.rawValue), "path": .string(request.uri.path),
            ], durability: .sync)
            await service.learnedHigherEpoch(claimed, from: "a client request (\(Self.headerName): \(value))")
        } else if claimed < local && request.method != .get && request.method != .head {
            return HTTPServer.render(service.respond(
                .staleEpoch(node: service.config.id, nodeEpoch: local, seenEpoch: claimed, seenFrom: "the request (\(Self.headerName))"),
                context: ["method": .string(request.method.rawValue), "path": .string(request.uri.path)]))
        }
        return try await next(request, context)
    }
}

// HTTPServer.swift — the client HTTP API on Hummingbird: routes onto KVService.
//
//   PUT    /v1/kv/{key}          body = value              -> {"lsn":N,"epoch":E} once durable
//   GET    /v1/kv/{key}[?min_lsn=N]                       -> value; X-AeroDB-LSN / -Epoch / -Role
//   DELETE /v1/kv/{key}                                    -> {"lsn":N,"epoch":E}
//   GET    /v1/kv?prefix=P[&min_lsn=N]                    -> {"lsn","epoch","entries","truncated"}
//   POST   /v1/txn               JSON (TransactionRequest) -> {"lsn":N,"epoch":E}
//   GET    /v1/status                                      -> node facts, cluster, epoch history
//   GET    /metrics                                        -> Prometheus text
//   GET    /v1/checkpoint[?lsn=L&offset=O]                 -> a chunk of the latest checkpoint (re-seeding)
//
// A key is one path segment, percent-decoded here (Hummingbird leaves path parameters encoded):
// `/v1/kv/a%2Fb` is the key `a/b`. Bodies are read up to the configured bound plus one byte, so
// an oversized body is refused without buffering more than the bound.

import AeroCore
import Hummingbird
import Logging

public enum HTTPServer {
    /// Largest `POST /v1/txn` body, independent of the value bound: the ops list and its JSON.
    static func txnBodyBytesMax(_ budgets: BudgetsConfig) -> Int {
        Int(min(budgets.valueBytesMax * 4 + budgets.txnOpsMax * (budgets.keyBytesMax + 256), 64 << 20))
    }

    public static func router(_ service: KVService, admin: AdminService? = nil) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: ClientEpochMiddleware(service: service))  // X-AeroDB-Epoch (ClientEpochMiddleware.swift)
        let valueBytesMax = Int(service.config.budgets.valueBytesMax)

        router.put("/v1/kv/:key") { request, context -> Response in
            guard let key = decodedKey(context) else { return render(service.invalidKeyResponse()) }
            var request = request
            guard let body = try? await request.collectBody(upTo: valueBytesMax) else {
                return render(service.respond(.request(.valueTooLarge, "body exceeds budgets.value_bytes_max \(valueBytesMax)")))
            }
            return render(await service.put(key: key, value: Array(buffer: body)))
        }
        router.get("/v1/kv/:key") { request, context -> Response in
            guard let key = decodedKey(context) else { return render(service.invalidKeyResponse()) }
            switch minLSN(request) {
            case .malformed(let response): return render(response)
            case .none: return render(await service.get(key: key, minLSN: nil))
            case .lsn(let lsn): return render(await service.get(key: key, minLSN: lsn))
            }
        }
        router.delete("/v1/kv/:key") { _, context -> Response in
            guard let key = decodedKey(context) else { return render(service.invalidKeyResponse()) }
            return render(await service.delete(key: key))
        }
        router.get("/v1/kv") { request, _ -> Response in
            let prefix = request.uri.queryParameters.get("prefix") ?? ""
            switch minLSN(request) {
            case .malformed(let response): return render(response)
            case .none: return render(await service.list(prefix: prefix, minLSN: nil))
            case .lsn(let lsn): return render(await service.list(prefix: prefix, minLSN: lsn))
            }
        }
        router.post("/v1/txn") { request, _ -> Response in
            var request = request
            let limit = txnBodyBytesMax(service.config.budgets)
            guard let body = try? await request.collectBody(upTo: limit) else {
                return render(service.respond(.request(.txnTooLarge, "transaction body exceeds \(limit) bytes")))
            }
            return render(await service.transaction(body: Array(buffer: body)))
        }
        // Cluster labels: cluster state written through the WAL (ClusterLabels.swift).
        router.get("/v1/cluster/labels") { _, _ -> Response in render(service.clusterLabels()) }
        router.put("/v1/cluster/labels/:key") { request, context -> Response in
            guard let name = decodedKey(context) else { return render(service.invalidKeyResponse()) }
            var request = request
            guard let body = try? await request.collectBody(upTo: ClusterLabels.valueBytesMax) else {
                return render(service.respond(.request(.badRequest, "value of label \"\(name.prefix(80))\" exceeds \(ClusterLabels.valueBytesMax) bytes")))
            }
            return render(await service.setClusterLabel(name: name, value: Array(buffer: body)))
        }
        router.delete("/v1/cluster/labels/:key") { _, context -> Response in
            guard let name = decodedKey(context) else { return render(service.invalidKeyResponse()) }
            return render(await service.unsetClusterLabel(name: name))
        }
        router.get("/v1/status") { _, _ -> Response in render(service.status()) }
        router.get("/metrics") { _, _ -> Response in render(service.metricsText()) }
        router.get("/v1/checkpoint") { request, _ -> Response in  // re-seeding a replica (ReseedEndpoint.swift)
            render(await service.checkpointChunk(lsnText: request.uri.queryParameters.get("lsn"),
                                                 offsetText: request.uri.queryParameters.get("offset")))
        }
        if let admin { AdminRoutes.register(router, admin) }  // /v1/admin/*: AdminRoutes.swift
        return router
    }

    /// Runs the API until the process is asked to stop (SIGTERM/SIGINT via swift-service-lifecycle).
    /// `onListening` receives the bound port (the configured one, or the OS's choice for port 0).
    public static func run(_ service: KVService, admin: AdminService? = nil, logger: Logger,
                           onListening: @escaping @Sendable (Int) -> Void) async throws {
        let app = Application(
            router: router(service, admin: admin),
            configuration: .init(address: .hostname(service.config.http.host, port: service.config.http.port), serverName: "aerodb"),
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? service.config.http.port) },
            logger: logger)
        try await app.runService()
    }

    private static func decodedKey(_ context: BasicRequestContext) -> String? {
        guard let raw = context.parameters.get("key"), let key = raw.removingPercentEncoding else { return nil }
        return key
    }

    private enum MinLSN {
        case none
        case lsn(LSN)
        case malformed(APIResponse)
    }

    private static func minLSN(_ request: Request) -> MinLSN {
        guard let text = request.uri.queryParameters.get("min_lsn") else { return .none }
        guard let value = UInt64(text) else {
            return .malformed(.json(Refusal.request(.badRequest, "min_lsn: expected an unsigned integer, got \"\(text.prefix(32))\"").json,
                                    status: ErrorCode.badRequest.httpStatus))
        }
        return .lsn(LSN(value))
    }

    static func render(_ response: APIResponse) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = response.contentType
        for (name, value) in response.headers {
            // HTTPTypes' HTTPField, reached through Hummingbird's export of HTTPFields.
            if let field = HTTPFields.Element.Name(name) { headers[field] = value }
        }
        return Response(status: .init(code: response.status), headers: headers,
                         body: ResponseBody(byteBuffer: ByteBuffer(bytes: response.body)))
    }
}

extension KVService {
    func invalidKeyResponse() -> APIResponse {
        respond(.request(.invalidKey, "the key is not valid percent-encoded UTF-8"))
    }
}

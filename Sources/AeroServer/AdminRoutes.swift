// AdminRoutes.swift — registers `/v1/admin/*` (AdminService.swift) on the HTTP router.

import Hummingbird

enum AdminRoutes {
    /// Admin bodies are small JSON documents (a follow carries the epoch history).
    static let bodyBytesMax = 1 << 20

    static func register(_ router: Router<BasicRequestContext>, _ admin: AdminService) {
        router.post("/v1/admin/promote") { request, _ -> Response in
            HTTPServer.render(await admin.promote(body: try await body(request)))
        }
        router.get("/v1/admin/decisions") { _, _ -> Response in HTTPServer.render(admin.listDecisions()) }
        router.get("/v1/admin/decisions/:id") { _, context -> Response in
            HTTPServer.render(admin.decision(id: context.parameters.get("id") ?? ""))
        }
        router.get("/v1/admin/promotion") { _, _ -> Response in HTTPServer.render(admin.promotionState()) }
        router.post("/v1/admin/fence") { request, _ -> Response in HTTPServer.render(await admin.fence(body: try await body(request))) }
        router.post("/v1/admin/unfence") { request, _ -> Response in HTTPServer.render(await admin.unfence(body: try await body(request))) }
        router.post("/v1/admin/claim") { request, _ -> Response in HTTPServer.render(admin.claim(body: try await body(request))) }
        router.post("/v1/admin/release") { request, _ -> Response in HTTPServer.render(admin.release(body: try await body(request))) }
        router.post("/v1/admin/follow") { request, _ -> Response in HTTPServer.render(await admin.follow(body: try await body(request))) }
    }

    private static func body(_ request: Request) async throws -> [UInt8] {
        var request = request
        return Array(buffer: try await request.collectBody(upTo: bodyBytesMax))
    }
}

// APIResponse.swift — an HTTP answer independent of the HTTP library: KVService, AdminService
// and the promotion coordinator build these; HTTPServer.swift writes them out.

import AeroCore

/// An HTTP answer, independent of the HTTP library.
public struct APIResponse: Sendable, Equatable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var contentType: String

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8], contentType: String) {
        self.status = status
        self.headers = headers
        self.body = body
        self.contentType = contentType
    }

    public static func json(_ value: JSONValue, status: Int = 200, headers: [(String, String)] = []) -> APIResponse {
        APIResponse(status: status, headers: headers, body: Array((value.canonicalJSON + "\n").utf8), contentType: "application/json")
    }

    public static func == (a: APIResponse, b: APIResponse) -> Bool {
        a.status == b.status && a.body == b.body && a.contentType == b.contentType
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

import AeroCore
import AeroSecurity
import Foundation
import NIOSSL
import Testing

@Suite("Cluster CA and member certificates")
struct ClusterCertificatesTests {
    static func directory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("aerodb-certs-\(UUID().uuidString)").path
    }

    @Test("init makes a CA, issue a member certificate naming its member; keys are 0600; nothing is overwritten")
    func initAndIssue() throws {
        let dir = Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ClusterCertificates.initAuthority(directory: dir, clusterName: "test")
        try ClusterCertificates.issue(directory: dir, id: "n1", hosts: ["10.0.0.5", "db1.example"])
        let files = ClusterCertificates.memberFiles(dir, "n1")
        let leaf = try NIOSSLCertificate.fromPEMFile(files.certificate)
        #expect(leaf.count == 1)
        #expect(MemberIdentity.member(of: leaf.first, members: ["n1", "n2"]) == "n1")
        #expect(MemberIdentity.member(of: leaf.first, members: ["n2"]) == nil, "a certificate of a member not configured names nobody")
        let ca = try NIOSSLCertificate.fromPEMFile(dir + "/ca.pem")
        #expect(MemberIdentity.member(of: ca.first, members: ["n1"]) == nil, "the CA is no member")
        let sans = Array(leaf[0]._subjectAlternativeNames())
        #expect(sans.count == 5)
        for key in [files.key, dir + "/ca.key"] {
            let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(key)")
        }
        do {
            try ClusterCertificates.initAuthority(directory: dir, clusterName: "test")
            Issue.record("init overwrote a CA")
        } catch { #expect(error.message.contains("exists already")) }
        do {
            try ClusterCertificates.issue(directory: dir, id: "n1")
            Issue.record("issue overwrote a certificate")
        } catch { #expect(error.path == files.key && error.message.contains("exists already")) }
        // Every context a node and the CLI use builds from these files.
        let tls = TLSFiles(certificate: files.certificate, key: files.key, ca: dir + "/ca.pem")
        for use in [TLSContexts.Use.httpServer, .peerServer, .peerClient] { _ = try TLSContexts.node(tls, use) }
        _ = try TLSContexts.client(caFile: dir + "/ca.pem")
    }

    @Test("issue without a CA says how to make one")
    func issueWithoutCA() {
        let dir = Self.directory()
        do {
            try ClusterCertificates.issue(directory: dir, id: "n1")
            Issue.record("issued without a CA")
        } catch { #expect(error.path.hasSuffix("ca.pem") && error.message.contains("cannot be read")) }
    }
}

// ClusterCertificates.swift — the cluster's own CA and its member certificates, made with
// swift-certificates and swift-crypto (no openssl). `aerodb certs init` and `aerodb certs issue`
// call these; `aerodb local-cluster start` calls both for its nodes.
//
// Files in a certificate directory:
//     ca.pem   ca.key          the cluster CA (the key signs member certificates; keep it off nodes)
//     ID.pem   ID.key          member ID: its certificate (server and client) and key
//
// Invariants:
//   1. A member certificate names its member in the subject's common name, with the
//      organizational unit `aerodb-member` (MemberIdentity.swift reads both); it is valid for
//      serving (its SANs: localhost, 127.0.0.1, ::1 and every --host) and as a client.
//   2. Keys are written with mode 0600 and never overwritten: an existing file is an error,
//      so re-running `certs init` cannot orphan the certificates already issued.
//   3. Keys are P-256 ECDSA; certificates are X.509 v3 signed with ECDSA-SHA256.

import AeroCore
import Crypto
import Foundation
import SwiftASN1
import X509

public enum ClusterCertificates {
    public static let caCertificateFile = "ca.pem"
    public static let caKeyFile = "ca.key"
    public static let memberUnit = "aerodb-member"
    public static let caValidityDays = 3650
    public static let memberValidityDaysDefault = 825

    /// The files of one member in `directory`.
    public static func memberFiles(_ directory: String, _ id: NodeID) -> (certificate: String, key: String) {
        ((directory as NSString).appendingPathComponent("\(id.rawValue).pem"),
         (directory as NSString).appendingPathComponent("\(id.rawValue).key"))
    }

    /// Makes `directory` (if needed) and a new CA in it; refuses to overwrite one (invariant 2).
    public static func initAuthority(directory: String, clusterName: String, now: Date = Date()) throws(SecurityFileError) {
        let certPath = (directory as NSString).appendingPathComponent(caCertificateFile)
        let keyPath = (directory as NSString).appendingPathComponent(caKeyFile)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw SecurityFileError(path: directory, message: "cannot be created: \(error.localizedDescription)")
        }
        let key = P256.Signing.PrivateKey()
        let certificate: Certificate
        do {
            let name = try DistinguishedName {
                OrganizationName("AeroDB cluster \(clusterName)")
                CommonName("AeroDB cluster CA \(clusterName)")
            }
            certificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(caValidityDays) * 86_400),
                issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: .init(key.publicKey))
                },
                issuerPrivateKey: .init(key))
        } catch {
            throw SecurityFileError(path: certPath, message: "the CA certificate could not be made: \(error)")
        }
        try writeNew(keyPath, try pem(Certificate.PrivateKey(key), keyPath), mode: 0o600)
        try writeNew(certPath, try pem(certificate, certPath), mode: 0o644)
    }

    /// Issues a member certificate for `id`, signed by the CA in `directory` (invariant 1).
    public static func issue(directory: String, id: NodeID, hosts: [String] = [], validityDays: Int = memberValidityDaysDefault,
                             now: Date = Date()) throws(SecurityFileError) {
        precondition(validityDays > 0, "a certificate needs a positive validity")
        let (caCertificate, caKey) = try readAuthority(directory)
        let (certPath, keyPath) = memberFiles(directory, id)
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1])),
                                    .ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1])))]
        for host in hosts {
            if let bytes = ipAddressBytes(host) { names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes)))) } else { names.append(.dnsName(host)) }
        }
        let certificate: Certificate
        do {
            let subject = try DistinguishedName {
                OrganizationalUnitName(memberUnit)
                CommonName(id.rawValue)
            }
            certificate = try Certificate(
                version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
                notValidBefore: now.addingTimeInterval(-300), notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400),
                issuer: caCertificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyAgreement: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames(names)
                },
                issuerPrivateKey: caKey)
        } catch {
            throw SecurityFileError(path: certPath, message: "the certificate for \(id) could not be made: \(error)")
        }
        try writeNew(keyPath, try pem(Certificate.PrivateKey(key), keyPath), mode: 0o600)
        try writeNew(certPath, try pem(certificate, certPath), mode: 0o644)
    }

    static func readAuthority(_ directory: String) throws(SecurityFileError) -> (Certificate, Certificate.PrivateKey) {
        let certPath = (directory as NSString).appendingPathComponent(caCertificateFile)
        let keyPath = (directory as NSString).appendingPathComponent(caKeyFile)
        let certificate: Certificate
        let key: Certificate.PrivateKey
        do { certificate = try Certificate(pemEncoded: try readText(certPath)) } catch let e as SecurityFileError { throw e } catch {
            throw SecurityFileError(path: certPath, message: "is not a PEM certificate (\(error)); make one with `aerodb certs init --dir \(directory)`")
        }
        do { key = try Certificate.PrivateKey(pemEncoded: try readText(keyPath)) } catch let e as SecurityFileError { throw e } catch {
            throw SecurityFileError(path: keyPath, message: "is not a PEM private key (\(error))")
        }
        guard key.publicKey == certificate.publicKey else {
            throw SecurityFileError(path: keyPath, message: "is not the key of \(certPath)")
        }
        return (certificate, key)
    }

    static func readText(_ path: String) throws(SecurityFileError) -> String {
        do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw SecurityFileError(path: path, message: "cannot be read: \(error.localizedDescription)")
        }
    }

    static func pem(_ certificate: Certificate, _ path: String) throws(SecurityFileError) -> String {
        do { return try certificate.serializeAsPEM().pemString } catch {
            throw SecurityFileError(path: path, message: "could not be encoded: \(error)")
        }
    }

    static func pem(_ key: Certificate.PrivateKey, _ path: String) throws(SecurityFileError) -> String {
        do { return try key.serializeAsPEM().pemString } catch {
            throw SecurityFileError(path: path, message: "could not be encoded: \(error)")
        }
    }

    /// Writes a file that must not exist yet (O_EXCL), with `mode` (invariant 2).
    static func writeNew(_ path: String, _ text: String, mode: mode_t) throws(SecurityFileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else {
            let e = errno
            throw SecurityFileError(path: path, message: e == EEXIST ? "exists already; remove it first to replace it"
                                                                      : "cannot be created: \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        let bytes = Array((text.hasSuffix("\n") ? text : text + "\n").utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count, fsync(fd) == 0 else {
            throw SecurityFileError(path: path, message: "could not be written: \(String(cString: strerror(errno)))")
        }
    }

    /// The bytes of an IPv4 or IPv6 literal, nil for a DNS name.
    static func ipAddressBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

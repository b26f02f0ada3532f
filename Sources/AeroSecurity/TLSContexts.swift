// TLSContexts.swift — the NIOSSL contexts a node and the CLI use, from the files of a
// certificate directory (ClusterCertificates.swift).
//
//   HTTP server  node cert; trusts only the cluster CA; a client certificate is optional
//                (clients use tokens) but, when presented, must verify: only then does a
//                member-only route see `Principal.member` (AuthMiddleware in AeroServer).
//   peer server  node cert; a verified member certificate is required (mutual TLS).
//   peer client  node cert as client certificate; the server must verify against the CA.
//   CLI client   trusts only the given CA; no client certificate.
//
// Every context pins the trust store to the cluster CA (never the system roots), TLS 1.2
// minimum. Hostnames are not checked between members (they connect by configured address and
// check the member id in the certificate instead); the CLI checks the hostname it dialled.

import AeroCore
import NIOSSL

/// Paths of a node's TLS material (the `security.tls` section of its configuration).
public struct TLSFiles: Hashable, Sendable {
    public var certificate: String
    public var key: String
    public var ca: String

    public init(certificate: String, key: String, ca: String) {
        self.certificate = certificate
        self.key = key
        self.ca = ca
    }
}

public enum TLSContexts {
    public enum Use: Sendable {
        case httpServer
        case peerServer
        case peerClient
    }

    /// A node's context for `use`; errors name the file that could not be used.
    public static func node(_ files: TLSFiles, _ use: Use) throws(SecurityFileError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(files.certificate) } catch {
            throw SecurityFileError(path: files.certificate, message: "is not a PEM certificate: \(error)")
        }
        do { key = try NIOSSLPrivateKey(file: files.key, format: .pem) } catch {
            throw SecurityFileError(path: files.key, message: "is not a PEM private key: \(error)")
        }
        let roots = try caCertificates(files.ca)
        var configuration: TLSConfiguration
        switch use {
        case .httpServer, .peerServer:
            configuration = .makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.certificateVerification = use == .peerServer ? .noHostnameVerification : .optionalVerification
        case .peerClient:
            configuration = .makeClientConfiguration()
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
            configuration.certificateVerification = .noHostnameVerification
        }
        configuration.trustRoots = .certificates(roots)
        configuration.minimumTLSVersion = .tlsv12
        return try context(configuration, files.certificate)
    }

    /// The CLI's context: trusts only the CA in `caFile`, checks the hostname.
    public static func client(caFile: String) throws(SecurityFileError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try caCertificates(caFile))
        configuration.certificateVerification = .fullVerification
        configuration.minimumTLSVersion = .tlsv12
        return try context(configuration, caFile)
    }

    static func caCertificates(_ path: String) throws(SecurityFileError) -> [NIOSSLCertificate] {
        do {
            let roots = try NIOSSLCertificate.fromPEMFile(path)
            guard !roots.isEmpty else { throw SecurityFileError(path: path, message: "holds no certificate") }
            return roots
        } catch let error as SecurityFileError {
            throw error
        } catch {
            throw SecurityFileError(path: path, message: "is not a PEM CA certificate: \(error)")
        }
    }

    static func context(_ configuration: TLSConfiguration, _ path: String) throws(SecurityFileError) -> NIOSSLContext {
        do { return try NIOSSLContext(configuration: configuration) } catch {
            throw SecurityFileError(path: path, message: "cannot make a TLS context: \(error)")
        }
    }
}

import AeroTestSupport
import Foundation
import Testing

/// docs/architecture.md and Package.swift describe the same package: every target is in the
/// doc, every dependency arrow drawn there is an import in the code (and every import between
/// the package's modules is drawn), and every import is declared in Package.swift.
@Suite struct ArchitectureTidyTests {
    /// The arrows of the "Dependencies" block: lines `Module -> A, B` (or `Module -> —`).
    static func drawnArrows() throws -> [String: Set<String>] {
        let text = try Repository.text("docs/architecture.md")
        guard let start = text.range(of: "<!-- dependencies: checked by ArchitectureTidyTests -->") else {
            Issue.record("docs/architecture.md has no dependencies block")
            return [:]
        }
        var arrows: [String: Set<String>] = [:]
        for line in text[start.upperBound...].split(separator: "\n").dropFirst().prefix(while: { !$0.hasPrefix("```") }) {
            let sides = line.components(separatedBy: "->")
            guard sides.count == 2 else {
                Issue.record("docs/architecture.md: \"\(line)\" is not `Module -> A, B`")
                continue
            }
            let module = sides[0].trimmingCharacters(in: .whitespaces)
            let deps = sides[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0 != "—" && !$0.isEmpty }
            #expect(arrows[module] == nil, "docs/architecture.md draws \(module) twice")
            arrows[module] = Set(deps)
        }
        return arrows
    }

    /// Modules the platform provides, imported without a declaration.
    static let platformModules: Set<String> = ["Foundation", "FoundationNetworking", "FoundationXML", "Dispatch", "Glibc", "Darwin", "Testing", "XCTest", "Synchronization"]

    @Test func everyTargetIsInTheArchitectureDoc() throws {
        let doc = try Repository.text("docs/architecture.md")
        let targets = try Tidy.packageTargets()
        #expect(targets.count >= 20, "parsed only \(targets.count) targets from Package.swift")
        for target in targets {
            #expect(doc.contains("`\(target.name)`"), "Package.swift has target \(target.name), which docs/architecture.md does not name")
        }
    }

    @Test func theDrawnArrowsAreTheImports() throws {
        let targets = try Tidy.packageTargets().filter { $0.kind != "testTarget" }
        let byModule = Dictionary(uniqueKeysWithValues: targets.map { ($0.module, $0.name) })
        let arrows = try Self.drawnArrows()
        for target in targets {
            guard let drawn = arrows[target.name] else {
                Issue.record("docs/architecture.md draws no arrows for \(target.name)")
                continue
            }
            // A C or system target has no Swift imports: its arrows are its declared dependencies.
            let uses = target.isSwiftSource
                ? Set(try Tidy.imports(under: target.path).compactMap { byModule[$0] }).subtracting([target.name])
                : Set(target.targets)
            for missing in uses.subtracting(drawn).sorted() {
                Issue.record("\(target.name) imports \(missing), but docs/architecture.md draws no arrow \(target.name) -> \(missing)")
            }
            for extra in drawn.subtracting(uses).sorted() {
                Issue.record("docs/architecture.md draws \(target.name) -> \(extra), but \(target.name) does not import \(extra)")
            }
        }
        for drawn in arrows.keys where !targets.contains(where: { $0.name == drawn }) {
            Issue.record("docs/architecture.md draws arrows for \(drawn), which is not a target of Package.swift")
        }
    }

    @Test func everyImportIsDeclared() throws {
        let targets = try Tidy.packageTargets()
        let byModule = Dictionary(uniqueKeysWithValues: targets.map { ($0.module, $0.name) })
        var checked = 0
        for target in targets where target.isSwiftSource || target.kind == "testTarget" {
            let declared = Set(target.targets).union(target.products)
            for module in try Tidy.imports(under: target.path) where !Self.platformModules.contains(module) && module != target.module {
                checked += 1
                let name = byModule[module] ?? module
                #expect(declared.contains(name), "\(target.path) imports \(module), which Package.swift does not declare for \(target.name)")
            }
        }
        #expect(checked >= 60, "checked only \(checked) imports")
    }

    /// The pure replication session machines import no storage (their drivers may).
    @Test func theSessionMachinesImportNoStorage() throws {
        for file in ["PrimaryReplicaSession", "ReplicaSession", "CommitQuorum", "PeerMessage", "WireProtocol", "WireCodec"] {
            let imports = Tidy.matches(#"^\s*import\s+(\w+)"#, in: try Repository.text("Sources/AeroReplication/\(file).swift"), options: .anchorsMatchLines).map { $0[1] }
            #expect(!imports.contains("AeroStorage"), "Sources/AeroReplication/\(file).swift imports AeroStorage")
        }
    }
}

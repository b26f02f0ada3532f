// ExploreCommand.swift — `aerodb-policy explore`: the decision surface over one or more
// varied facts fields. Every cell is a full decision by the engine eval uses (same native
// rules, same sandbox, same budgets), so a cell says exactly what eval would say for the
// facts with those values set.
import AeroCore
import AeroPolicy
import AeroPromotion
import ArgumentParser

struct ExploreCommand: ParsableCommand {
    /// Most cells (combinations of the varied values) one exploration decides.
    static let cellsMax = 10_000

    static let configuration = CommandConfiguration(
        commandName: "explore",
        abstract: "Decide every combination of varied facts fields: the decision surface.",
        discussion: """
            Each --vary sets one field of the facts (a path as in policy tests) to each of its \
            values: PATH=FROM..TO[:STEP] for integers, PATH=a,b,c for listed values (JSON \
            scalars such as true, null, 12 or "text"; anything else is a string). One --vary \
            prints a table (value, decision, deciding rules and policies); two print a grid \
            (rows: the first, columns: the second); more print one row per cell. At most \
            \(cellsMax) cells.

            Examples:
              aerodb-policy explore --facts examples/facts/failover-ok.json \\
                  --policy policies --vary '$.nodes[1].applied_lsn=3000..6000:500'
              aerodb-policy explore --facts examples/facts/failover-ok.json \\
                  --policy policies --vary '$.nodes[1].applied_lsn=4000..5200:400' \\
                  --vary '$.cluster.commit_mode=sync,async'

            Exit codes: 0 the surface was printed; 2 unusable input (facts, policy, a --vary \
            that cannot be parsed, more than \(cellsMax) cells, facts a cell makes invalid).
            """
    )

    @Option(name: .long, help: ArgumentHelp("The facts document (JSON); '-' reads standard input.", valueName: "file"))
    var facts: String

    @Option(name: .long, parsing: .upToNextOption, help: ArgumentHelp(
        "A policy file, or a directory whose *.lua files are policies. Repeatable.", valueName: "file-or-dir"))
    var policy: [String] = []

    @Option(name: .long, help: ArgumentHelp(
        "PATH=FROM..TO[:STEP] or PATH=a,b,c: a field and its values. Repeatable.", valueName: "spec"))
    var vary: [String] = []

    @Option(name: .long, help: "Output format: text for people, json for programs (one document).")
    var format: OutputFormat = .text

    func validate() throws {
        guard !vary.isEmpty else { throw ValidationError("give at least one --vary PATH=FROM..TO[:STEP] or PATH=a,b,c") }
        let specs = try parsedSpecs()
        var seen: Set<String> = []
        for spec in specs where !seen.insert(spec.path.description).inserted {
            throw ValidationError("--vary \(spec.path) is given twice")
        }
        var cells = 1
        for spec in specs {
            cells *= spec.values.count
            if cells > Self.cellsMax {
                let sizes = specs.map { String($0.values.count) }.joined(separator: " x ")
                throw ValidationError("the exploration has more than \(Self.cellsMax) cells (\(sizes) values); narrow a --vary range or raise its STEP")
            }
        }
    }

    private func parsedSpecs() throws -> [VarySpec] {
        do {
            return try vary.map { text throws(UnusableInput) in try VarySpec(parsing: text) }
        } catch {
            throw ValidationError(error.message)
        }
    }

    func run() throws {
        let specs = try parsedSpecs()
        let base = try EvalInputs.facts(path: facts).json
        let sources = try EvalInputs.policies(paths: policy)
        let engine = PromotionEngine(policies: sources, sandbox: PolicySandbox(budget: PolicySet.budget))
        var cells: [ExploreCell] = []
        for combination in Self.combinations(specs.map(\.values)) {
            var json = base
            for (spec, value) in zip(specs, combination) {
                do {
                    try JSONOverride(path: spec.path, operation: .set(value)).apply(to: &json)
                } catch {
                    throw UnusableInput(message: "--vary \(spec.text): \(error.description)")
                }
            }
            let document: FactsDocument
            do {
                document = try FactsDocument(json: json)
            } catch {
                let values = zip(specs, combination).map { "\($0.path) = \($1.canonicalJSON)" }.joined(separator: ", ")
                throw UnusableInput(message: "facts \(facts) with \(values): \(EvalInputs.describe(error))")
            }
            cells.append(ExploreCell(values: combination, decision: engine.decide(document)))
        }
        let surface = ExploreSurface(paths: specs.map(\.path.description), cells: cells)
        switch format {
        case .json: print(surface.json.prettyJSON)
        case .text: print(surface.text, terminator: "")
        }
    }

    /// Every combination, the last field varying fastest.
    static func combinations(_ lists: [[JSONValue]]) -> [[JSONValue]] {
        lists.reduce([[]]) { partial, values in partial.flatMap { prefix in values.map { prefix + [$0] } } }
    }
}

struct ExploreCell {
    let values: [JSONValue]
    let allowed: Bool
    /// The rules and policies that refused, each once, in the decision's reason order.
    let sources: [String]

    init(values: [JSONValue], decision: Decision) {
        self.values = values
        allowed = decision.allowed
        var sources: [String] = []
        for reason in decision.reasons where !sources.contains(reason.source) { sources.append(reason.source) }
        self.sources = sources
    }

    var word: String { allowed ? "allow" : "refuse" }
}

struct ExploreSurface {
    let paths: [String]
    let cells: [ExploreCell]

    var json: JSONValue {
        .object([
            "varied": .array(paths.map(JSONValue.string)),
            "cells": .array(cells.map { cell in
                .object([
                    "values": .object(Dictionary(uniqueKeysWithValues: zip(paths, cell.values))),
                    "decision": .string(cell.word),
                    "sources": .array(cell.sources.map(JSONValue.string)),
                ])
            }),
        ])
    }

    var text: String {
        var rows: [[String]]
        var notes: [String] = []
        if paths.count == 2 {
            // A grid: rows the first field's values, columns the second's; a refusing cell
            // names its sources by a key listed below the grid.
            var columns: [JSONValue] = []
            var rowValues: [JSONValue] = []
            for cell in cells {
                if !rowValues.contains(cell.values[0]) { rowValues.append(cell.values[0]) }
                if !columns.contains(cell.values[1]) { columns.append(cell.values[1]) }
            }
            var keys: [[String]] = []
            func label(_ cell: ExploreCell) -> String {
                if cell.allowed { return "allow" }
                if !keys.contains(cell.sources) { keys.append(cell.sources) }
                return "refuse[\(keys.firstIndex(of: cell.sources)! + 1)]"
            }
            rows = [["\(paths[0]) \\ \(paths[1])"] + columns.map(\.canonicalJSON)]
            for (rowIndex, row) in rowValues.enumerated() {
                let line = cells[(rowIndex * columns.count)..<((rowIndex + 1) * columns.count)].map(label)
                rows.append([row.canonicalJSON] + line)
            }
            for (index, sources) in keys.enumerated() { notes.append("[\(index + 1)] \(sources.joined(separator: ", "))") }
        } else {
            rows = [paths + ["decision", "sources"]]
            for cell in cells {
                rows.append(cell.values.map(\.canonicalJSON) + [cell.word, cell.sources.joined(separator: ", ")])
            }
        }
        let widths = rows.reduce(into: [Int](repeating: 0, count: rows[0].count)) { widths, row in
            for (index, field) in row.enumerated() { widths[index] = max(widths[index], field.count) }
        }
        var lines = rows.map { row in
            row.enumerated().map { index, field in
                index == row.count - 1 ? field : field + String(repeating: " ", count: widths[index] - field.count)
            }.joined(separator: "  ").trailingSpacesRemoved
        }
        lines += notes
        let allowed = cells.filter(\.allowed).count
        lines.append("\(cells.count) cells, \(allowed) allowed, \(cells.count - allowed) refused")
        return lines.joined(separator: "\n") + "\n"
    }
}

extension String {
    var trailingSpacesRemoved: String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}

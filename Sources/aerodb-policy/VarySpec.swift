// VarySpec.swift — one `explore --vary` argument: a facts field and the values it takes.
//
//     PATH=FROM..TO[:STEP]   integers FROM, FROM+STEP, … up to TO (STEP > 0, default 1)
//     PATH=a,b,c             listed values: each is JSON if it parses as a JSON scalar
//                            (true, false, null, 12, "quoted"), else the text as a string
//
// PATH is the override path of policy tests (JSONOverride.swift), e.g. `$.nodes[1].applied_lsn`.
import AeroCore

struct VarySpec: Sendable, CustomStringConvertible {
    /// Values one --vary may list or range over (the cells of all of them are bounded too).
    static let valuesMax = ExploreCommand.cellsMax

    let path: JSONPath
    let values: [JSONValue]
    let text: String
    var description: String { text }

    init(parsing text: String) throws(UnusableInput) {
        self.text = text
        func fail(_ message: String) -> UnusableInput { UnusableInput(message: "--vary \(text): \(message)") }
        guard let equals = Self.separator(in: text) else {
            throw fail("expected PATH=FROM..TO[:STEP] or PATH=a,b,c")
        }
        let pathText = String(text[..<equals])
        let valuesText = String(text[text.index(after: equals)...])
        do {
            path = try JSONPath(parsing: pathText)
        } catch {
            throw fail(error.description)
        }
        guard !path.steps.isEmpty else { throw fail("the whole document cannot be varied; name a field") }
        if let range = valuesText.range(of: ".."), Int64(valuesText[..<range.lowerBound]) != nil {
            values = try Self.integers(String(valuesText[range.upperBound...]), from: Int64(valuesText[..<range.lowerBound])!, fail: fail)
        } else {
            let items = valuesText.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard items.count <= Self.valuesMax else { throw fail("more than \(Self.valuesMax) values") }
            guard !items.contains(where: \.isEmpty) else { throw fail("an empty value in the list (write \"\" for the empty string)") }
            values = items.map(Self.scalar)
        }
    }

    /// The first '=' outside a quoted member (`["a=b"]`).
    private static func separator(in text: String) -> String.Index? {
        var quoted = false
        var escaped = false
        for index in text.indices {
            let character = text[index]
            if escaped { escaped = false; continue }
            if quoted, character == "\\" { escaped = true; continue }
            if character == "\"" { quoted.toggle(); continue }
            if character == "=", !quoted { return index }
        }
        return nil
    }

    private static func integers(_ rest: String, from: Int64, fail: (String) -> UnusableInput) throws(UnusableInput) -> [JSONValue] {
        let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let to = Int64(parts[0]) else { throw fail("TO in FROM..TO[:STEP] must be an integer") }
        var step: Int64 = 1
        if parts.count == 2 {
            guard let parsed = Int64(parts[1]), parsed > 0 else { throw fail("STEP in FROM..TO[:STEP] must be a positive integer") }
            step = parsed
        }
        guard from <= to else { throw fail("FROM \(from) is greater than TO \(to)") }
        let (span, overflow) = to.subtractingReportingOverflow(from)
        guard !overflow, span / step < Int64(valuesMax) else {
            throw fail("more than \(valuesMax) values; narrow the range or raise STEP")
        }
        return stride(from: from, through: to, by: Int64.Stride(step)).map { JSONValue.integer($0) }
    }

    private static func scalar(_ item: String) -> JSONValue {
        if let parsed = try? JSONParser.parse(item) {
            switch parsed {
            case .array, .object: break
            default: return parsed
            }
        }
        return .string(item)
    }
}

// TransactionRequest.swift — the body of `POST /v1/txn`, parsed strictly into a Transaction.
//
//     { "ops": [ { "op": "put", "key": "a", "value": "text" },
//                { "op": "put", "key": "b", "value_base64": "AAE=" },
//                { "op": "delete", "key": "c" } ],
//       "preconditions": [ { "key": "a", "value": "old" },      // a's value equals "old"
//                          { "key": "d", "value": null } ] }    // d is absent
//
// Every error names the JSON path of the field (`ops[2].key`). Unknown keys are errors.

import AeroCore
import AeroStorage
import Foundation

enum TransactionRequest {
    static func parse(_ body: [UInt8], budgets: BudgetsConfig) -> Result<Transaction, Refusal> {
        func bad(_ path: String, _ message: String) -> Result<Transaction, Refusal> {
            .failure(.request(.badRequest, "\(path): \(message)", facts: ["field": .string(path)]))
        }
        guard let text = String(validating: body, as: UTF8.self) else { return bad("(body)", "not UTF-8") }
        let root: JSONValue
        do {
            root = try JSONParser.parse(text)
        } catch {
            return bad("(body)", error.description)
        }
        guard let object = root.objectValue else { return bad("(body)", "expected an object") }
        if let unknown = object.keys.sorted().first(where: { $0 != "ops" && $0 != "preconditions" }) {
            return bad(unknown, "unknown key (allowed: ops, preconditions)")
        }
        guard let ops = object["ops"]?.arrayValue, !ops.isEmpty else { return bad("ops", "expected a non-empty array") }
        let preconditions = object["preconditions"]?.arrayValue ?? []
        if object["preconditions"] != nil && object["preconditions"]?.arrayValue == nil {
            return bad("preconditions", "expected an array")
        }
        guard UInt64(ops.count + preconditions.count) <= budgets.txnOpsMax else {
            return .failure(.request(.txnTooLarge, "\(ops.count) operations and \(preconditions.count) preconditions exceed budgets.txn_ops_max \(budgets.txnOpsMax)"))
        }

        var transaction = Transaction()
        for (index, op) in ops.enumerated() {
            let path = "ops[\(index)]"
            guard let fields = op.objectValue else { return bad(path, "expected an object") }
            guard let key = fields["key"]?.stringValue, !key.isEmpty, UInt64(key.utf8.count) <= budgets.keyBytesMax else {
                return .failure(.request(.invalidKey, "\(path).key: expected a key of 1...\(budgets.keyBytesMax) bytes"))
            }
            guard !SystemKeys.isReserved(key) else {
                return .failure(.request(.invalidKey, "\(path).key: keys starting with a NUL byte are reserved for cluster state"))
            }
            switch fields["op"]?.stringValue {
            case "put":
                if let unknown = fields.keys.sorted().first(where: { !["op", "key", "value", "value_base64"].contains($0) }) {
                    return bad("\(path).\(unknown)", "unknown key")
                }
                switch value(fields, path: path) {
                case .failure(let refusal): return .failure(refusal)
                case .success(nil): return bad("\(path).value", "a put needs value or value_base64")
                case .success(let bytes?):
                    guard UInt64(bytes.count) <= budgets.valueBytesMax else {
                        return .failure(.request(.valueTooLarge, "\(path): value of \(bytes.count) bytes exceeds budgets.value_bytes_max \(budgets.valueBytesMax)"))
                    }
                    transaction.put(key, bytes)
                }
            case "delete":
                if let unknown = fields.keys.sorted().first(where: { !["op", "key"].contains($0) }) {
                    return bad("\(path).\(unknown)", "unknown key")
                }
                transaction.delete(key)
            default:
                return bad("\(path).op", "expected \"put\" or \"delete\"")
            }
        }
        for (index, condition) in preconditions.enumerated() {
            let path = "preconditions[\(index)]"
            guard let fields = condition.objectValue else { return bad(path, "expected an object") }
            if let unknown = fields.keys.sorted().first(where: { !["key", "value", "value_base64"].contains($0) }) {
                return bad("\(path).\(unknown)", "unknown key")
            }
            guard let key = fields["key"]?.stringValue, !key.isEmpty else {
                return .failure(.request(.invalidKey, "\(path).key: expected a non-empty key"))
            }
            guard !SystemKeys.isReserved(key) else {
                return .failure(.request(.invalidKey, "\(path).key: keys starting with a NUL byte are reserved for cluster state"))
            }
            guard fields["value"] != nil || fields["value_base64"] != nil else {
                return bad(path, "needs value (null for absent) or value_base64")
            }
            switch value(fields, path: path) {
            case .failure(let refusal): return .failure(refusal)
            case .success(let bytes): transaction.expect(key, equals: bytes)
            }
        }
        return .success(transaction)
    }

    /// `value` (string or null) or `value_base64`; nil for null/absent.
    private static func value(_ fields: [String: JSONValue], path: String) -> Result<[UInt8]?, Refusal> {
        if fields["value"] != nil && fields["value_base64"] != nil {
            return .failure(.request(.badRequest, "\(path): give value or value_base64, not both"))
        }
        if let encoded = fields["value_base64"] {
            guard let text = encoded.stringValue, let data = Data(base64Encoded: text) else {
                return .failure(.request(.badRequest, "\(path).value_base64: expected base64 text"))
            }
            return .success(Array(data))
        }
        switch fields["value"] {
        case nil, .null?: return .success(nil)
        case .string(let s)?: return .success(Array(s.utf8))
        case let other?: return .failure(.request(.badRequest, "\(path).value: expected a string or null, got \(other.typeName)"))
        }
    }
}

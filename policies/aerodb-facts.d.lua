---@meta
-- aerodb-facts.d.lua — Lua language-server annotations for AeroDB promotion policies.
--
-- This file is never run: `---@meta` marks it as definitions only, and `aerodb-policy`
-- skips `*.d.lua` files found in a policy directory. With policies/.luarc.json, an editor running lua-language-server
-- (LuaLS) completes fact fields and checks their types while you write a policy.
--
-- Every fact a node could not report is nil (JSON null): an unreachable node has
-- `reachable = false` and nil for everything but `id`, `role` and `labels`. The whole
-- document is read-only inside the sandbox; `pairs` yields keys in sorted order.
-- The reference for every field is docs/policy-guide.md, "Facts reference".

---@alias aerodb.RequestKind
---| "failover"   # the primary is gone; promote without it
---| "switchover" # planned: the primary is reachable and is fenced first

---@alias aerodb.CommitMode
---| "sync"  # a write is acknowledged only once every node in sync_replicas stored it durably
---| "async" # a write is acknowledged once the primary stored it durably

---@alias aerodb.Role "primary"|"replica"

---@class aerodb.Request
---@field kind aerodb.RequestKind what is asked
---@field candidate string id of the node to promote
---@field requested_by string? who asked (a person or an on-call rota)

---@class aerodb.Cluster
---@field name string the cluster's name from configuration
---@field epoch integer the current authority term: only its primary may write
---@field primary string id of the primary of the current epoch
---@field commit_mode aerodb.CommitMode
---@field sync_replicas string[] ids of the replicas a sync commit waits for
---@field labels table<string, string>? the cluster's replicated labels, e.g. labels["change-freeze"]
---@field history aerodb.Epoch[]? recent epochs, oldest first (nil in aerodb.facts/1)

---@class aerodb.Epoch
---@field epoch integer
---@field primary string the epoch's primary
---@field start_lsn integer the epoch's first LSN
---@field kind string? "initial", "failover" or "switchover"; nil when not recorded
---@field decision_id string? the decision that began the epoch
---@field started_at string? when the epoch began (RFC 3339); nil when not recorded

---@class aerodb.WAL
---@field continuous boolean the node's WAL has no gap
---@field corrupt boolean a checksum failed somewhere in the node's WAL

---@class aerodb.Node
---@field id string the node's stable name from configuration
---@field role aerodb.Role the role from configuration
---@field reachable boolean whether the fact collector reached the node
---@field epoch integer? the epoch the node reports
---@field durable_lsn integer? last WAL position fsynced on the node
---@field applied_lsn integer? last position visible to reads on the node
---@field acked_lsn integer? primary only: highest position acknowledged to a client as committed
---@field primary_acked_lsn integer? replicas: the primary's acked_lsn as last heard by this node
---@field wal aerodb.WAL?
---@field recovering boolean? re-seeding, or not yet caught up with its primary's position at connect
---@field following string? id of the primary this replica follows
---@field last_contact_ms integer? replicas: milliseconds since it last heard from its primary
---@field labels table<string, string> site labels from configuration, e.g. labels.zone
---@field policy_set_digest string? the node's policy set digest (aerodb.facts/2)
---@field engine_version string? the node's build (aerodb.facts/2)

---@class aerodb.Facts
---@field schema string "aerodb.facts/2" (or "aerodb.facts/1" for older documents)
---@field captured_at string when the facts were captured (RFC 3339); informative only
---@field request aerodb.Request
---@field cluster aerodb.Cluster
---@field nodes aerodb.Node[] every configured node, in document order
---@field candidate aerodb.Node? the node named by request.candidate (added by the engine)
---@field primary aerodb.Node? the node named by cluster.primary (added by the engine)

---A policy file returns one function of this type. Return nil for no objection, or a
---non-empty string, or a list of non-empty strings: the refusal reason(s). Anything else,
---an error or a budget exceeded, is a refusal by the policy (fail closed).
---@alias aerodb.Policy fun(facts: aerodb.Facts): (string|string[]|nil)

---Recorded in the explanation of the decision, never on the CLI's stdout. Output beyond
---the sandbox's print budget is truncated.
---@param ... any
function print(...) end

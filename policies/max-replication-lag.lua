-- max-replication-lag.lua — refuse to promote a candidate that is too far behind.
--
-- What: the candidate's applied position (what it can serve to readers the moment it
-- becomes primary) must be within APPLIED_LAG_LSN_MAX of the most advanced position any
-- node reports: a node's durable_lsn, the primary's acked_lsn, or the primary_acked_lsn a
-- replica last heard from the primary.
--
-- Why: the native rules (DUR-1, DUR-2) already forbid losing an acknowledged write, but
-- they accept a candidate whose WAL is durable and far from applied, and a switchover with
-- lag the plan must wait out. A site that wants the new primary to serve current reads at
-- once, and a switchover that finishes quickly, bounds that lag here.
--
-- Configuration (edit the constants; they are the whole configuration):
--   APPLIED_LAG_LSN_MAX  largest accepted gap, in LSNs, between the most advanced known
--                        position and the candidate's applied_lsn. 0 means fully caught up.
--   KINDS                request kinds this policy applies to.
local APPLIED_LAG_LSN_MAX = 1000
local KINDS = { failover = true, switchover = true }

---@param facts aerodb.Facts
---@return string|string[]|nil
return function(facts)
    if not KINDS[facts.request.kind] then
        return nil
    end
    local candidate = facts.candidate
    if candidate == nil then
        return "the candidate is not among the nodes, its lag is unknown"
    end
    if candidate.applied_lsn == nil then
        return "candidate " .. candidate.id
            .. " reported no applied_lsn, its lag is unknown"
    end

    -- The most advanced position anyone reports, and who reports it.
    local reference, reporter = candidate.applied_lsn, candidate.id
    local function consider(position, who)
        if position ~= nil and position > reference then
            reference, reporter = position, who
        end
    end
    for _, node in ipairs(facts.nodes) do
        consider(node.durable_lsn, node.id .. " (durable_lsn)")
        consider(node.acked_lsn, node.id .. " (acked_lsn)")
        consider(node.primary_acked_lsn, node.id .. " (primary_acked_lsn)")
    end

    local lag = reference - candidate.applied_lsn
    if lag > APPLIED_LAG_LSN_MAX then
        return "candidate " .. candidate.id .. " has applied up to "
            .. candidate.applied_lsn .. ", " .. lag .. " LSNs behind " .. reference
            .. " reported by " .. reporter .. "; at most " .. APPLIED_LAG_LSN_MAX .. " allowed"
    end
    return nil
end

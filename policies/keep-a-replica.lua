-- keep-a-replica.lua — refuse a promotion that would leave the new primary without a replica.
--
-- What: after the candidate becomes primary, at least HEALTHY_REPLICAS_MIN other nodes must
-- be able to follow it at once. A node counts when it is a replica (not the candidate, not
-- the old primary), reachable, in the current epoch, with a continuous, uncorrupted WAL and
-- not recovering.
--
-- Why: a primary without a replica acknowledges writes that exist on one disk only; in sync
-- mode it cannot acknowledge at all. Promoting into that state trades one outage for a
-- worse one. The old primary is not counted even in a switchover: it is fenced first and
-- must rejoin before it can follow anyone.
--
-- Configuration:
--   HEALTHY_REPLICAS_MIN  replicas that must remain to follow the new primary.
--   KINDS                 request kinds this policy applies to.
local HEALTHY_REPLICAS_MIN = 1
local KINDS = { failover = true, switchover = true }

---@param node aerodb.Node
---@param epoch integer
---@return string|nil why the node cannot follow, nil when it can
local function unfit(node, epoch)
    if node.role ~= "replica" then
        return "role " .. tostring(node.role)
    end
    if node.reachable ~= true then
        return "unreachable"
    end
    if node.epoch ~= epoch then
        return "epoch " .. tostring(node.epoch)
    end
    local wal = node.wal
    if wal == nil or wal.continuous ~= true or wal.corrupt ~= false then
        return "WAL not continuous or corrupt"
    end
    if node.recovering ~= false then
        return "recovering"
    end
    return nil
end

---@param facts aerodb.Facts
---@return string|string[]|nil
return function(facts)
    if not KINDS[facts.request.kind] then
        return nil
    end
    local candidate_id = facts.request.candidate
    local primary_id = facts.cluster.primary
    local healthy, excluded = 0, {}
    for _, node in ipairs(facts.nodes) do
        if node.id ~= candidate_id and node.id ~= primary_id then
            local why = unfit(node, facts.cluster.epoch)
            if why == nil then
                healthy = healthy + 1
            else
                excluded[#excluded + 1] = node.id .. " (" .. why .. ")"
            end
        end
    end
    if healthy < HEALTHY_REPLICAS_MIN then
        local detail = ""
        if #excluded > 0 then
            detail = "; not counted: " .. table.concat(excluded, ", ")
        end
        return "only " .. healthy .. " healthy replica(s) would remain to follow "
            .. tostring(candidate_id) .. ", at least " .. HEALTHY_REPLICAS_MIN .. " required" .. detail
    end
    return nil
end

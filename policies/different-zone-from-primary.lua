-- different-zone-from-primary.lua — on failover, refuse a candidate in the failed primary's zone.
--
-- What: the candidate's zone label (node.labels[ZONE_LABEL]) must differ from the current
-- primary's. A node without the label is refused: its placement cannot be proven.
--
-- Why: a primary that became unreachable most often went down with its zone (power,
-- network, a bad rack). Promoting its neighbour puts the new primary in the failure domain
-- that just failed. A planned switchover chooses its target deliberately, so by default
-- this policy only judges failovers.
--
-- Configuration:
--   ZONE_LABEL  the node label that names the failure domain.
--   KINDS       request kinds this policy applies to.
local ZONE_LABEL = "zone"
local KINDS = { failover = true, switchover = false }

---@param node aerodb.Node
---@return string|nil
local function zone_of(node)
    local labels = node.labels
    if labels == nil then
        return nil
    end
    local zone = labels[ZONE_LABEL]
    if type(zone) ~= "string" or zone == "" then
        return nil
    end
    return zone
end

---@param facts aerodb.Facts
---@return string|string[]|nil
return function(facts)
    if not KINDS[facts.request.kind] then
        return nil
    end
    local candidate, primary = facts.candidate, facts.primary
    if candidate == nil or primary == nil then
        return "the candidate or the primary is not among the nodes"
    end
    if candidate.id == primary.id then
        return nil -- the primary itself is no candidate: the native rule ROLE-1 says so
    end
    local candidate_zone, primary_zone = zone_of(candidate), zone_of(primary)
    local reasons = {}
    if candidate_zone == nil then
        reasons[#reasons + 1] = "candidate " .. candidate.id
            .. " has no '" .. ZONE_LABEL .. "' label, its zone cannot be proven"
    end
    if primary_zone == nil then
        reasons[#reasons + 1] = "primary " .. primary.id
            .. " has no '" .. ZONE_LABEL .. "' label, its zone cannot be proven"
    end
    if #reasons > 0 then
        return reasons
    end
    if candidate_zone == primary_zone then
        return "candidate " .. candidate.id .. " is in zone "
            .. candidate_zone .. ", the same zone as the primary " .. primary.id
    end
    return nil
end

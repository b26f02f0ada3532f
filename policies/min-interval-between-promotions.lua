-- min-interval-between-promotions.lua — refuse a promotion too soon after the last one.
--
-- What: when the epoch the cluster is in began by a promotion (cluster.history's last entry,
-- kind "failover" or "switchover") less than MIN_INTERVAL_MINUTES before captured_at, the
-- promotion is refused, naming that epoch, its primary, its decision and when it may be
-- asked again. The first epoch of a cluster (kind "initial") never blocks. Any other epoch
-- whose start time was not recorded (started_at nil: the promotion could not write its
-- history record) is refused too: nothing then shows that the interval has passed.
--
-- Why: flapping — a primary promoted, failing again, promoted back — multiplies the risk of
-- every promotion and hides the real fault. What Orchestrator's RecoveryPeriodBlockSeconds
-- does, but with the times in the facts: the engine reads no clock, the policy compares two
-- times written in the facts (captured_at, by the candidate's clock now, and the epoch's
-- started_at, by the clock of the node that promoted then, replicated with the WAL), so a
-- decision replays offline to the same answer. The two come from two nodes' clocks: a skew
-- between them shifts the interval by that much (an epoch start later than captured_at is
-- refused, never read as long ago); keep the nodes' clocks synchronized (NTP).
--
-- By default it judges switchovers only. A failover is asked for because the primary is gone:
-- refusing it leaves the cluster without a writer until the interval ends, and AeroDB has no
-- automation that could flap by itself (every failover is an operator's request). A site that
-- wants a quiet period after failovers too sets KINDS.failover = true, knowing that cost.
--
-- Configuration:
--   MIN_INTERVAL_MINUTES  the quiet period after a promotion.
--   KINDS                 the request kinds this policy applies to.
--   CHECKED_LABEL         a cluster label an operator sets to an epoch's number to say its
--                         interval was checked by hand (used only when its start is unknown).
local MIN_INTERVAL_MINUTES = 10
local KINDS = { failover = false, switchover = true }
local CHECKED_LABEL = "min-interval-checked-epoch"

local ZERO, PLUS, MINUS, DOT = 48, 43, 45, 46

---The integer at text[at .. at+count-1], or nil when a byte there is not a digit.
---@param text string
---@param at integer
---@param count integer
---@return integer|nil
local function digits(text, at, count)
    local value = 0
    for i = at, at + count - 1 do
        local byte = string.byte(text, i)
        if byte == nil or byte < ZERO or byte > ZERO + 9 then return nil end
        value = value * 10 + (byte - ZERO)
    end
    return value
end

---Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
---@param y integer
---@param m integer
---@param d integer
---@return integer
local function days_from_civil(y, m, d)
    if m <= 2 then y = y - 1 end
    local era = y // 400
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = (153 * mp + 2) // 5 + d - 1
    local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468
end

---Seconds since 1970-01-01T00:00:00Z of an RFC 3339 time (fractions ignored), or nil.
---The engine validated both times as RFC 3339 before the policy runs.
---@param text string
---@return integer|nil
local function epoch_seconds(text)
    local y, mo, d = digits(text, 1, 4), digits(text, 6, 2), digits(text, 9, 2)
    local h, mi, s = digits(text, 12, 2), digits(text, 15, 2), digits(text, 18, 2)
    if not (y and mo and d and h and mi and s) then return nil end
    local at = 20
    if string.byte(text, at) == DOT then
        at = at + 1
        while digits(text, at, 1) ~= nil do at = at + 1 end
    end
    -- "Z" (or "z") is UTC; otherwise a "+HH:MM" or "-HH:MM" offset follows.
    local offset = 0
    local sign = string.byte(text, at)
    if sign == PLUS or sign == MINUS then
        local oh, om = digits(text, at + 1, 2), digits(text, at + 4, 2)
        if not (oh and om) then return nil end
        offset = (oh * 60 + om) * 60
        if sign == MINUS then offset = -offset end
    end
    return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - offset
end

---@param facts aerodb.Facts
---@return string|string[]|nil
return function(facts)
    if not KINDS[facts.request.kind] then return nil end
    local history = facts.cluster.history
    -- An aerodb.facts/1 document has no history: nothing to compare (replays keep their answer).
    if history == nil or #history == 0 then return nil end
    local last = history[#history]
    -- The cluster's first epoch began at its creation, not by a promotion.
    if last.kind == "initial" then return nil end
    local epoch = "epoch " .. tostring(last.epoch) .. " (" .. tostring(last.kind) .. " to " .. tostring(last.primary)
        .. ", decision " .. tostring(last.decision_id) .. ")"
    if last.started_at == nil then
        -- An operator who checked the time may say so, for this epoch only, as replicated state.
        local labels = facts.cluster.labels
        if labels ~= nil and labels[CHECKED_LABEL] == tostring(last.epoch) then return nil end
        return epoch .. " has no recorded start time (its promotion could not write its history record), so nothing shows that "
            .. MIN_INTERVAL_MINUTES .. " minutes have passed; once you have checked that they have, record it with "
            .. "`aerodb cluster labels set " .. CHECKED_LABEL .. "=" .. tostring(last.epoch) .. " --addr PRIMARY` and ask again"
    end
    local started, now = epoch_seconds(last.started_at), epoch_seconds(facts.captured_at)
    if started == nil then return epoch .. " has an unreadable started_at '" .. tostring(last.started_at) .. "'" end
    if now == nil then return "captured_at '" .. tostring(facts.captured_at) .. "' is not readable" end
    local waited = now - started
    local needed = MIN_INTERVAL_MINUTES * 60
    if waited >= needed then return nil end
    return epoch .. " began at " .. last.started_at .. ", " .. waited .. " s before these facts were captured; "
        .. "promotions are at least " .. MIN_INTERVAL_MINUTES .. " minutes apart: ask again in " .. (needed - waited) .. " s"
end

-- require-requested-by.lua — refuse a promotion nobody put their name to.
--
-- What: request.requested_by must be a non-blank name that is not one of the anonymous
-- placeholders below (compared case-insensitively, surrounding blanks ignored). When
-- REQUESTERS_ALLOWED is a list, the name must also be on it.
--
-- Why: a promotion moves write authority; the audit trail must say which person or which
-- on-call rota asked for it. Automation that cannot name its owner should not be promoting.
--
-- Configuration:
--   ANONYMOUS_NAMES     names that identify nobody.
--   REQUESTERS_ALLOWED  nil to accept any named requester, or a list of accepted names.
local ANONYMOUS_NAMES = { "unknown", "anonymous", "nobody", "root", "admin", "auto", "automation" }
local REQUESTERS_ALLOWED = nil ---@type string[]|nil

local SPACE, TAB, NEWLINE, RETURN = 32, 9, 10, 13

---@param byte integer
local function is_blank(byte)
    return byte == SPACE or byte == TAB or byte == NEWLINE or byte == RETURN
end

---Removes blanks at both ends without patterns (the sandbox bounds pattern matching).
---@param text string
---@return string
local function trim(text)
    local first, last = 1, #text
    while first <= last and is_blank(string.byte(text, first)) do
        first = first + 1
    end
    while last >= first and is_blank(string.byte(text, last)) do
        last = last - 1
    end
    return string.sub(text, first, last)
end

---@param list string[]
---@param name string
local function contains(list, name)
    for _, entry in ipairs(list) do
        if string.lower(entry) == name then
            return true
        end
    end
    return false
end

---@param facts aerodb.Facts
---@return string|string[]|nil
return function(facts)
    local requested_by = facts.request.requested_by
    if type(requested_by) ~= "string" then
        return "the request does not say who asked for it (request.requested_by is missing)"
    end
    local name = string.lower(trim(requested_by))
    if name == "" then
        return "request.requested_by is blank"
    end
    if contains(ANONYMOUS_NAMES, name) then
        return "request.requested_by '" .. requested_by
            .. "' is a shared or placeholder name, not a person or rota (name who asks)"
    end
    -- One line: the shipped REQUESTERS_ALLOWED is nil, so no test can take this branch; it
    -- counts as covered when its condition runs.
    if REQUESTERS_ALLOWED ~= nil and not contains(REQUESTERS_ALLOWED, name) then return "'" .. requested_by .. "' is not an allowed requester" end
    return nil
end

-- history.lua reads a channel's position and the events after a cursor in
-- one atomic step, so the events returned and the top agree.
--
-- KEYS[1] meta hash {epoch, top}     KEYS[2] history stream
-- ARGV[1] cursor epoch ("" for the zero cursor)
-- ARGV[2] cursor offset
-- ARGV[3] first stream id wanted: "0-<offset+1>" (computed in Go, where
--         offsets are exact integers)
--
-- Returns {} when the channel has no history, {epoch, top, 0} when the
-- cursor cannot be replayed from, and {epoch, top, 1, event...} otherwise,
-- each event encoded as publish.lua returns it.
-- The rules are Memory.History's.

local meta = redis.call('HMGET', KEYS[1], 'epoch', 'top')
local epoch, top = meta[1], meta[2] or '0'
if not epoch then
  return {}
end
local since = tonumber(ARGV[2])
local last = tonumber(top)
if (ARGV[1] == '' and since ~= 0) or (ARGV[1] ~= '' and ARGV[1] ~= epoch) or since > last then
  return {epoch, top, 0}
end

-- The oldest retained offset; an empty stream means everything up to top
-- has been trimmed.
local oldest = last + 1
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if first[1] then
  oldest = tonumber(string.sub(first[1][1], 3))
end
if since + 1 < oldest then
  return {epoch, top, 0}
end

-- Each event as publish.lua returned it: the origin (field "o", absent in
-- entries without one and in those older versions wrote), then the event
-- (field "e").
local out = {epoch, top, 1}
for _, entry in ipairs(redis.call('XRANGE', KEYS[2], ARGV[3], '+')) do
  local f, e, o = entry[2], '', ''
  for j = 1, #f, 2 do
    if f[j] == 'e' then
      e = f[j + 1]
    elseif f[j] == 'o' then
      o = f[j + 1]
    end
  end
  out[#out + 1] = o .. e
end
return out

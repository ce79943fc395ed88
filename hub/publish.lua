-- publish.lua appends a batch of events to their channels and announces
-- each, atomically: Redis runs a script to completion before any other
-- command, so offsets are dense, history and live delivery agree, and no
-- reader sees a half written event. Events are applied in the order given,
-- so a channel's events in one batch take consecutive offsets in that
-- order. Go sends one call per batch of concurrent publishes (on a Cluster,
-- one per hash slot, as a script's keys must share one).
--
-- KEYS, per event in order: its channel's meta hash {epoch, top, gen} and
--   history stream; for an event with a message id also the channel's id
--   hash (msgId -> remembered event) and id index (sorted set of msgId by
--   publish time in ms), see dedupe.go.
-- ARGV[1] history size (exact MAXLEN)
-- ARGV[2] history TTL in milliseconds
-- ARGV[3] dedupe window in milliseconds
-- ARGV[4] most ids remembered per channel
-- then six per event i, from ARGV[6i-1]:
--   epoch to use if the channel has none (fresh random, from Go),
--   PubSub channel, event type, event data (JSON, may be empty),
--   origin (encoded by Go, see encodeOrigin; empty for none),
--   message id (empty for none)
--
-- Returns one encoded event per input event, in order: the origin, then
-- "<epoch>-<offset> <unix µs> <len(type)> <type><data>"; an event whose
-- message id was published within the window is "=" and the first
-- publish's encoded event, and is neither stored nor announced.
-- The stream entry keeps the event in field "e" and a non-empty origin in
-- field "o", so entries without an origin look as they always did (and
-- as entries of older versions do); history.lua joins them back into
-- what the PubSub message carries, so one decoder serves replay and live
-- delivery.

-- The dataset's generation. A Redis that lost or rolled back writes has
-- either restarted (run_id changes on every start, and a start may load an
-- old snapshot) or been promoted from a replica that may lag (master_replid
-- changes on every promotion). Then the stored top may be behind offsets
-- already handed out, and reusing them would give two events one cursor.
-- Any change starts a new epoch: a clean restart costs subscribers one
-- resync, a rollback never costs them a silent one. Read once per call:
-- neither can change while a script runs, so the whole batch is checked
-- against the dataset it writes to.
local function info(section, field)
  return string.match(redis.call('INFO', section), field .. ':(%w+)') or ''
end
local gen = info('server', 'run_id') .. ':' .. info('replication', 'master_replid')

-- The server clock, so every node stamps events from one clock; one
-- reading serves the batch, as the script runs in one instant of Redis.
local now = redis.call('TIME')
local ts = now[1] .. string.format('%06d', tonumber(now[2]))

local size, ttl = ARGV[1], ARGV[2]
-- Set at the first event with a message id, so a batch without any costs
-- nothing more than before dedupe existed.
local nowms, window, maxids

-- An id hash entry is "<ms> <len(origin)> <origin><cursor> <unix µs>
-- <len(type)> <type>": the event without its data, which comes from the
-- stream while the stream still holds the event (same epoch, same
-- dataset), or else from the retry itself.
local function remembered(ids, id, meta, stream, data)
  local v = redis.call('HGET', ids, id)
  if not v then
    return nil
  end
  local ms, olen, rest = string.match(v, '^(%d+) (%d+) (.*)$')
  if not ms or nowms - tonumber(ms) > window then
    return nil
  end
  local origin, head = string.sub(rest, 1, tonumber(olen)), string.sub(rest, tonumber(olen) + 1)
  local epoch, off = string.match(head, '^(%S+)-(%d+) ')
  local m = redis.call('HMGET', meta, 'epoch', 'gen')
  if m[1] == epoch and m[2] == gen then
    local e = redis.call('XRANGE', stream, '0-' .. off, '0-' .. off)
    if e[1] then
      local f = e[1][2]
      for j = 1, #f, 2 do
        if f[j] == 'e' then
          return '=' .. origin .. f[j + 1]
        end
      end
    end
  end
  return '=' .. origin .. head .. data
end

-- remember records id's event and forgets ids beyond the window (a few per
-- publish, so the cost stays flat) and beyond the bound (the oldest).
local function remember(ids, idt, id, origin, head)
  redis.call('HSET', ids, id, nowms .. ' ' .. #origin .. ' ' .. origin .. head)
  redis.call('ZADD', idt, nowms, id)
  local stale = redis.call('ZRANGEBYSCORE', idt, '-inf', '(' .. (nowms - window), 'LIMIT', 0, 16)
  if #stale > 0 then
    redis.call('HDEL', ids, unpack(stale))
    redis.call('ZREM', idt, unpack(stale))
  end
  local extra = redis.call('ZCARD', idt) - maxids
  if extra > 0 then
    local popped = redis.call('ZPOPMIN', idt, extra)
    for j = 1, #popped, 2 do
      redis.call('HDEL', ids, popped[j])
    end
  end
  redis.call('PEXPIRE', ids, window)
  redis.call('PEXPIRE', idt, window)
end

local out = {}
local k = 1
for i = 1, (#ARGV - 4) / 6 do
  local meta, stream, a = KEYS[k], KEYS[k + 1], 6 * i - 1
  k = k + 2
  local id, ids, idt = ARGV[a + 5], nil, nil
  local dup = nil
  if id ~= '' then
    ids, idt = KEYS[k], KEYS[k + 1]
    k = k + 2
    if not nowms then
      nowms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
      window, maxids = tonumber(ARGV[3]), tonumber(ARGV[4])
    end
    dup = remembered(ids, id, meta, stream, ARGV[a + 3])
  end
  if dup then
    out[i] = dup
  else
    local m = redis.call('HMGET', meta, 'epoch', 'gen')
    local epoch = m[1]
    if not epoch or m[2] ~= gen then
      -- A new epoch. A stream left without its meta (e.g. evicted separately)
      -- belongs to a history nobody can name any more, and its ids would be
      -- ahead of the new offsets; a stream of another generation holds events
      -- whose cursors may already name others.
      epoch = ARGV[a]
      redis.call('DEL', meta, stream)
      redis.call('HSET', meta, 'epoch', epoch, 'gen', gen)
    end
    local top = redis.call('HINCRBY', meta, 'top', 1)
    local typ = ARGV[a + 2]
    local head = epoch .. '-' .. top .. ' ' .. ts .. ' ' .. #typ .. ' ' .. typ
    local ev = head .. ARGV[a + 3]
    local origin = ARGV[a + 4]
    -- Stream id "0-<offset>" makes "events after offset n" a plain XRANGE.
    if origin == '' then
      redis.call('XADD', stream, 'MAXLEN', size, '0-' .. top, 'e', ev)
    else
      redis.call('XADD', stream, 'MAXLEN', size, '0-' .. top, 'e', ev, 'o', origin)
      ev = origin .. ev
    end
    redis.call('PEXPIRE', meta, ttl)
    redis.call('PEXPIRE', stream, ttl)
    redis.call('PUBLISH', ARGV[a + 1], ev)
    if id ~= '' then
      remember(ids, idt, id, origin, head)
    end
    out[i] = ev
  end
end
return out

-- session.lua: every atomic step on one capture session. All keys share the
-- session id as hash tag, so the script runs on one Redis Cluster slot.
--
-- KEYS[1] session hash: data (fixed fields, JSON), pid, max, maxb (byte
--         quota, 0 none), dl (deadline ms, '' none), status, exp (ms),
--         ek (encounter index suffix), fk (facility index suffix), qr,
--         qrexp (ms), qrst (fresh|claimed), mob (the working phones' mobile
--         token hashes, space-separated), rev (revoked ones, likewise),
--         conn (ms)
-- KEYS[2] images hash: imageId -> image JSON (opaque here)
-- KEYS[3] pending hash: imageId -> {"key","ct","size","exp"} JSON
-- ARGV[1] op, ARGV[2] now (ms), ARGV[3] new expiry (ms), ARGV[4] keep-until (ms),
-- ARGV[5..] op arguments.
--
-- Replies are arrays whose first element is a status word. Writes that count
-- as activity reply {"ok", ek, mob, ...} so the caller can refresh the TTLs
-- of the index keys that live in other slots.
--
-- Times are stored exactly as passed (strings) so no float formatting ever
-- touches them; tonumber is used only to compare.

local s, i, p = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local now = tonumber(ARGV[2])

local function live()
  local e = redis.call('HGET', s, 'exp')
  return e and tonumber(e) > now
end

local function openErr()
  if not live() then return 'gone' end
  if redis.call('HGET', s, 'status') ~= 'open' then return 'closed' end
  return nil
end

-- touch extends the session's life; called after the writes so keys created
-- by them get a TTL too. Expiry only moves forward, whatever node's clock,
-- and never past the session's deadline (dl), however often it is written.
local function touch()
  local cur = tonumber(redis.call('HGET', s, 'exp') or '0')
  local exp, keep = ARGV[3], ARGV[4]
  local dl = redis.call('HGET', s, 'dl')
  if dl and dl ~= '' and tonumber(exp) > tonumber(dl) then
    keep = string.format('%.0f', tonumber(dl) + tonumber(ARGV[4]) - tonumber(ARGV[3]))
    exp = dl
  end
  local moved = tonumber(exp) > cur
  if moved then
    redis.call('HSET', s, 'exp', exp)
  end
  for _, k in ipairs({s, i, p}) do
    if moved or redis.call('PTTL', k) == -1 then
      redis.call('PEXPIREAT', k, keep)
    end
  end
  local f = redis.call('HMGET', s, 'ek', 'mob', 'rev')
  return {'ok', f[1] or '', ((f[2] or '') .. ' ' .. (f[3] or ''))}
end

-- words splits a space-separated list of hashes.
local function words(v)
  local out = {}
  for w in string.gmatch(v or '', '%S+') do table.insert(out, w) end
  return out
end

local function has(list, x)
  for _, w in ipairs(list) do
    if w == x then return true end
  end
  return false
end

local function qrState(hash)
  if redis.call('EXISTS', s) == 0 then return 'notfound' end
  if openErr() then return 'expired' end
  local f = redis.call('HMGET', s, 'qr', 'qrst', 'qrexp')
  if f[1] ~= hash then return 'superseded' end
  if f[2] == 'claimed' then return 'claimed' end
  if tonumber(f[3]) <= now then return 'expired' end
  return 'ok'
end

local function liveSlots(except)
  local n = redis.call('HLEN', i)
  local pend = redis.call('HGETALL', p)
  for k = 1, #pend, 2 do
    if pend[k] ~= except and cjson.decode(pend[k + 1]).exp > now then
      n = n + 1
    end
  end
  return n
end

-- usedBytes: the sizes of the images and of every pending upload but
-- except, expired or not (their blobs exist until the sweeper drops them).
local function usedBytes(except)
  local n = 0
  for _, v in ipairs(redis.call('HVALS', i)) do
    n = n + (cjson.decode(v).size or 0)
  end
  local pend = redis.call('HGETALL', p)
  for k = 1, #pend, 2 do
    if pend[k] ~= except then
      n = n + cjson.decode(pend[k + 1]).size
    end
  end
  return n
end

local ops = {}

-- create: 5 data, 6 pid, 7 max, 8 qr, 9 qrexp, 10 ek, 11 maxb, 12 dl, 13 fk
function ops.create()
  if redis.call('EXISTS', s) == 1 then return {'exists'} end
  redis.call('HSET', s, 'data', ARGV[5], 'pid', ARGV[6], 'max', ARGV[7],
    'qr', ARGV[8], 'qrexp', ARGV[9], 'qrst', 'fresh', 'status', 'open',
    'ek', ARGV[10], 'maxb', ARGV[11], 'dl', ARGV[12], 'fk', ARGV[13], 'exp', '0')
  return touch()
end

-- reopen: 5 pid, 6 qr, 7 qrexp
function ops.reopen()
  if openErr() then return {'gone'} end
  if redis.call('HGET', s, 'pid') ~= ARGV[5] then return {'mismatch'} end
  redis.call('HSET', s, 'qr', ARGV[6], 'qrexp', ARGV[7], 'qrst', 'fresh')
  return touch()
end

-- peek: 5 qr
function ops.peek()
  return {qrState(ARGV[5])}
end

-- claim: 5 qr, 6 mob, 7 max phones. Adds the phone to the session's
-- phones; the phones claimed before keep working.
function ops.claim()
  local st = qrState(ARGV[5])
  if st ~= 'ok' then return {st} end
  local mob = words(redis.call('HGET', s, 'mob'))
  if #mob >= tonumber(ARGV[7]) then return {'phones'} end
  table.insert(mob, ARGV[6])
  redis.call('HSET', s, 'qrst', 'claimed', 'mob', table.concat(mob, ' '), 'conn', ARGV[2])
  return touch()
end

-- revoke: 5 mob. Moves the phone from mob to rev; does not touch the
-- session.
function ops.revoke()
  if not live() then return {'gone'} end
  local mob, rev = words(redis.call('HGET', s, 'mob')), words(redis.call('HGET', s, 'rev'))
  if has(rev, ARGV[5]) then return {'ok'} end
  if not has(mob, ARGV[5]) then return {'unknown'} end
  local keep = {}
  for _, w in ipairs(mob) do
    if w ~= ARGV[5] then table.insert(keep, w) end
  end
  table.insert(rev, ARGV[5])
  redis.call('HSET', s, 'mob', table.concat(keep, ' '), 'rev', table.concat(rev, ' '))
  return {'ok'}
end

-- reserve: 5 imageId, 6 pending JSON
function ops.reserve()
  local e = openErr()
  if e then return {e} end
  if redis.call('HEXISTS', i, ARGV[5]) == 1 then return {'exists'} end
  if liveSlots(ARGV[5]) >= tonumber(redis.call('HGET', s, 'max')) then return {'full'} end
  local maxb = tonumber(redis.call('HGET', s, 'maxb') or '0')
  if maxb > 0 and usedBytes(ARGV[5]) + cjson.decode(ARGV[6]).size > maxb then return {'quota'} end
  redis.call('HSET', p, ARGV[5], ARGV[6])
  return touch()
end

-- drop: 5 imageId, 6 exp (ms). Removes a stale pending upload if it is
-- still the one that expires at 6; does not touch the session.
function ops.drop()
  local cur = redis.call('HGET', p, ARGV[5])
  if cur and string.format('%.0f', cjson.decode(cur).exp) == ARGV[6] then
    redis.call('HDEL', p, ARGV[5])
  end
  return {'ok'}
end

-- add: 5 imageId, 6 image JSON. Replies {"ok", ek, mob, json} when added,
-- {"exists", "", "", stored json} when the image was already registered.
function ops.add()
  local e = openErr()
  if e then return {e} end
  local old = redis.call('HGET', i, ARGV[5])
  if old then return {'exists', '', '', old} end
  if redis.call('HLEN', i) >= tonumber(redis.call('HGET', s, 'max')) then return {'full'} end
  redis.call('HSET', i, ARGV[5], ARGV[6])
  redis.call('HDEL', p, ARGV[5])
  local r = touch()
  table.insert(r, ARGV[6])
  return r
end

-- cas: 5 imageId, 6 expected JSON, 7 new JSON ('' deletes). Optimistic
-- update: the caller read the image, changed it, and writes it back only if
-- nobody changed it in between.
function ops.cas()
  if not live() then return {'gone'} end
  local cur = redis.call('HGET', i, ARGV[5])
  if not cur then return {'missing'} end
  if cur ~= ARGV[6] then return {'conflict'} end
  if ARGV[7] == '' then
    redis.call('HDEL', i, ARGV[5])
  else
    redis.call('HSET', i, ARGV[5], ARGV[7])
  end
  return touch()
end

-- status: 5 status. Replies {"ok", ek, fk}.
function ops.status()
  if not live() then return {'gone'} end
  redis.call('HSET', s, 'status', ARGV[5])
  local f = redis.call('HMGET', s, 'ek', 'fk')
  return {'ok', f[1] or '', f[2] or ''}
end

-- expire: marks an expired session for removal; a session refreshed since
-- it was scheduled replies {"live", exp} so the caller can reschedule it.
function ops.expire()
  local e = redis.call('HGET', s, 'exp')
  if not e then return {'gone'} end
  if tonumber(e) > now then return {'live', e} end
  redis.call('HSET', s, 'status', 'expired')
  return {'expired'}
end

local f = ops[op]
if not f then return redis.error_reply('unknown op ' .. tostring(op)) end
return f()

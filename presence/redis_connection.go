package presence

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// The connection-wide operations of the Redis registry: each finds the
// connection's channels in its set and runs one script per channel.

// CloseConnection implements Registry.
func (r *Redis) CloseConnection(ctx context.Context, connID string) error {
	chans, err := r.client.SMembers(ctx, r.connKey(connID)).Result()
	if err != nil {
		return fmt.Errorf("presence: close connection on redis: %w", err)
	}
	prefix := field(connID, "")
	for _, ch := range chans {
		_, err := r.removeWhere(ctx, ch, false, func(f string, _ meta) bool { return strings.HasPrefix(f, prefix) })
		if err != nil {
			return fmt.Errorf("presence: close connection on redis: %w", err)
		}
	}
	if err := r.client.Del(ctx, r.connKey(connID)).Err(); err != nil {
		return fmt.Errorf("presence: close connection on redis: %w", err)
	}
	return nil
}

// DetachConnection implements Registry.
func (r *Redis) DetachConnection(ctx context.Context, connID string) error {
	until := r.cfg.Now().Add(r.cfg.Grace)
	n, _, err := r.eachChannel(ctx, connID, "detach", strconv.FormatInt(ms(until), 10))
	if err != nil {
		return fmt.Errorf("presence: detach connection on redis: %w", err)
	}
	if n == 0 {
		err = r.client.Del(ctx, r.connKey(connID)).Err()
	} else {
		// The set outlives the Grace and the lost window, then goes.
		err = r.client.PExpire(ctx, r.connKey(connID), r.cfg.Grace+r.cfg.LostTTL+connKeyMargin).Err()
	}
	if err != nil {
		return fmt.Errorf("presence: detach connection on redis: %w", err)
	}
	return nil
}

// Claim implements Registry.
func (r *Redis) Claim(ctx context.Context, connID string) (bool, error) {
	n, lost, err := r.eachChannel(ctx, connID, "claim", r.cfg.NodeID)
	if err == nil && n > 0 {
		err = r.client.Persist(ctx, r.connKey(connID)).Err()
	}
	if err != nil {
		return false, fmt.Errorf("presence: claim connection on redis: %w", err)
	}
	return lost, nil
}

// eachChannel runs redis_conn.lua on each of the connection's channels; it
// returns the members found and whether any channel remembered it lost.
func (r *Redis) eachChannel(ctx context.Context, connID, op, arg string) (n int64, lost bool, err error) {
	chans, err := r.client.SMembers(ctx, r.connKey(connID)).Result()
	if err != nil {
		return 0, false, err
	}
	now := ms(r.cfg.Now())
	for _, ch := range chans {
		res, err := connScript.Run(ctx, r.client, []string{r.key(ch, "meta"), r.key(ch, "lost")},
			op, field(connID, ""), arg, connID, now, r.cfg.NodeID).Int64Slice()
		if err != nil {
			return 0, false, err
		}
		if len(res) == 2 {
			n += res[0]
			lost = lost || res[1] == 1
		}
	}
	return n, lost, nil
}

// meta is a member's record beside its data: which node holds its
// connection, and until when it waits for the connection to come back.
type meta struct {
	owner         string
	detachedUntil int64 // ms; 0 while live
}

func parseMeta(s string) meta {
	i := strings.LastIndexByte(s, '|')
	if i < 0 {
		return meta{owner: s}
	}
	until, _ := strconv.ParseInt(s[i+1:], 10, 64)
	return meta{owner: s[:i], detachedUntil: until}
}

// removeWhere removes the channel's members that remove selects, each
// with a synthesized LEAVE, unless they changed since read; lost has
// Claim report their connections. It returns the connIds removed.
func (r *Redis) removeWhere(ctx context.Context, channel string, lost bool, remove func(field string, m meta) bool) ([]string, error) {
	keys := r.channelKeys(channel)
	metas, err := r.client.HGetAll(ctx, keys[1]).Result()
	if err != nil || len(metas) == 0 {
		return nil, err
	}
	var fields, metaVals []string
	for f, v := range metas {
		if remove(f, parseMeta(v)) {
			fields, metaVals = append(fields, f), append(metaVals, v)
		}
	}
	if len(fields) == 0 {
		return nil, nil
	}
	vals, err := r.client.HMGet(ctx, keys[0], fields...).Result()
	if err != nil {
		return nil, err
	}
	now := r.cfg.Now()
	lostFlag := "0"
	if lost {
		lostFlag = "1"
	}
	args := []any{r.cfg.HistorySize, r.cfg.HistoryTTL.Milliseconds(), r.pubKey(channel), ms(now.Add(r.cfg.LostTTL)), ms(now)}
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // gone meanwhile
		}
		var mem Member
		if err := json.Unmarshal([]byte(s), &mem); err != nil {
			return nil, fmt.Errorf("member record on redis: %w", err)
		}
		mem.ID, mem.Timestamp = r.synthID(mem.ConnectionID), now
		ev, err := json.Marshal(Event{Action: Leave, Member: mem, Synthesized: true})
		if err != nil {
			return nil, err
		}
		args = append(args, fields[i], s, metaVals[i], ev, lostFlag)
	}
	return removeScript.Run(ctx, r.client, keys, args...).StringSlice()
}

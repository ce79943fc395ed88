package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// uploadMember names one reservation in the uploads schedule. The expiry is
// part of it, so re-signing an image adds a new entry instead of moving the
// old one, and each entry is checked against the reservation it was made for.
func uploadMember(id, imageID string, expiresAt time.Time) string {
	return id + " " + imageID + " " + ms(expiresAt)
}

// scheduleUpload adds a reservation to the uploads schedule, by URL expiry.
func (r *RedisStore) scheduleUpload(ctx context.Context, id, imageID string, expiresAt time.Time) error {
	err := r.c.ZAdd(ctx, r.uploadsKey(), redis.Z{
		Score: float64(expiresAt.UnixMilli()), Member: uploadMember(id, imageID, expiresAt)}).Err()
	if err != nil {
		return fmt.Errorf("session: redis schedule upload: %w", err)
	}
	return nil
}

// StaleUploads implements Store: lease.lua takes due entries off the
// schedule, then each is checked against the session's pending record; an
// entry whose reservation was registered, re-signed or removed is dropped
// from the schedule instead of returned.
func (r *RedisStore) StaleUploads(ctx context.Context, before, now time.Time, lease time.Duration, limit int) ([]StaleUpload, error) {
	members, err := leaseScript.Run(ctx, r.c, []string{r.uploadsKey()}, ms(before), ms(now.Add(lease)), limit).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("session: redis lease stale uploads: %w", err)
	}
	var out []StaleUpload
	for _, m := range members {
		up, ok, err := r.staleUpload(ctx, m)
		if err != nil {
			return out, err
		}
		if !ok {
			if err := r.c.ZRem(ctx, r.uploadsKey(), m).Err(); err != nil {
				return out, fmt.Errorf("session: redis unschedule upload: %w", err)
			}
			continue
		}
		out = append(out, up)
	}
	return out, nil
}

// staleUpload reads the reservation a schedule entry names; ok is false if
// it is no longer pending as scheduled.
func (r *RedisStore) staleUpload(ctx context.Context, member string) (StaleUpload, bool, error) {
	parts := strings.SplitN(member, " ", 3)
	if len(parts) != 3 {
		return StaleUpload{}, false, nil
	}
	id, imageID := parts[0], parts[1]
	raw, err := r.c.HGet(ctx, r.sessionKeys(id)[2], imageID).Result()
	if errors.Is(err, redis.Nil) {
		return StaleUpload{}, false, nil
	}
	if err != nil {
		return StaleUpload{}, false, fmt.Errorf("session: redis read pending upload: %w", err)
	}
	var p redisPending
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return StaleUpload{}, false, fmt.Errorf("session: decode pending upload: %w", err)
	}
	up := p.upload()
	if ms(up.ExpiresAt) != parts[2] {
		return StaleUpload{}, false, nil
	}
	return StaleUpload{SessionID: id, ImageID: imageID, PendingUpload: up}, true, nil
}

// DropUpload implements Store.
func (r *RedisStore) DropUpload(ctx context.Context, id, imageID string, expiresAt time.Time) error {
	if _, err := r.run(ctx, id, "drop", expiresAt, expiresAt, imageID, ms(expiresAt)); err != nil {
		return err
	}
	if err := r.c.ZRem(ctx, r.uploadsKey(), uploadMember(id, imageID, expiresAt)).Err(); err != nil {
		return fmt.Errorf("session: redis unschedule upload: %w", err)
	}
	return nil
}

// PendingKeys implements Store.
func (r *RedisStore) PendingKeys(ctx context.Context, id string) ([]string, error) {
	vals, err := r.c.HVals(ctx, r.sessionKeys(id)[2]).Result()
	if err != nil {
		return nil, fmt.Errorf("session: redis read pending uploads: %w", err)
	}
	var keys []string
	for _, v := range vals {
		var p redisPending
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return nil, fmt.Errorf("session: decode pending upload: %w", err)
		}
		if p.Key != "" {
			keys = append(keys, p.Key)
		}
	}
	sort.Strings(keys)
	return keys, nil
}

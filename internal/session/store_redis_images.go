package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// openError maps session.lua's refusals of writes to errors.
func openError(state string) error {
	switch state {
	case "ok":
		return nil
	case "closed":
		return ErrClosed
	case "exists":
		return ErrImageExists
	case "full":
		return ErrTooManyImages
	case "missing":
		return ErrImageNotFound
	case "quota":
		return ErrQuotaExceeded
	default:
		return ErrNotFound
	}
}

// Reserve implements Store.
func (r *RedisStore) Reserve(ctx context.Context, id, imageID string, p PendingUpload, at Touch) error {
	data, err := json.Marshal(redisPending{Key: p.Key, ContentType: p.ContentType, Size: p.Size, Exp: p.ExpiresAt.UnixMilli()})
	if err != nil {
		return fmt.Errorf("session: encode pending upload: %w", err)
	}
	// Scheduled before it exists: an entry whose upload was never stored is
	// dropped by the sweep, while an upload stored unscheduled would leave
	// its blob until the session expires.
	if err := r.scheduleUpload(ctx, id, imageID, p.ExpiresAt); err != nil {
		return err
	}
	res, err := r.run(ctx, id, "reserve", at.Now, at.Expires, imageID, string(data))
	if err != nil {
		return err
	}
	if err := openError(res[0]); err != nil {
		return err
	}
	r.afterTouch(ctx, res, at.Expires)
	return nil
}

// AddImage implements Store.
func (r *RedisStore) AddImage(ctx context.Context, id string, img Image, at Touch) (Image, bool, error) {
	data, err := json.Marshal(img)
	if err != nil {
		return Image{}, false, fmt.Errorf("session: encode image: %w", err)
	}
	res, err := r.run(ctx, id, "add", at.Now, at.Expires, img.ID, string(data))
	if err != nil {
		return Image{}, false, err
	}
	if res[0] != "exists" {
		if err := openError(res[0]); err != nil {
			return Image{}, false, err
		}
		r.afterTouch(ctx, res, at.Expires)
		return img, true, nil
	}
	var old Image
	if len(res) < 4 || json.Unmarshal([]byte(res[3]), &old) != nil {
		return Image{}, false, errors.New("session: redis add: unreadable stored image")
	}
	return old, false, nil
}

// UpdateImage implements Store with optimistic retries.
func (r *RedisStore) UpdateImage(ctx context.Context, id, imageID string, at Touch, update func(*Image) error) (Image, error) {
	return r.casImage(ctx, id, imageID, at, func(img *Image) (bool, error) {
		orig := *img
		if err := update(img); err != nil {
			return false, err
		}
		img.ID, img.Key, img.SHA256 = orig.ID, orig.Key, orig.SHA256
		return true, nil
	})
}

// RemoveImage implements Store.
func (r *RedisStore) RemoveImage(ctx context.Context, id, imageID string, at Touch) (Image, error) {
	return r.casImage(ctx, id, imageID, at, func(img *Image) (bool, error) {
		return false, img.Commit.Editable()
	})
}

// casImage reads an image, lets change edit it (keep=true) or ask for its
// removal (keep=false), and writes the result only if the image did not
// change meanwhile, retrying otherwise. It returns the new image, or the
// removed one.
func (r *RedisStore) casImage(ctx context.Context, id, imageID string, at Touch, change func(*Image) (bool, error)) (Image, error) {
	keys := r.sessionKeys(id)
	for range casAttempts {
		var exp *redis.StringCmd
		var cur *redis.StringCmd
		_, err := r.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
			exp, cur = p.HGet(ctx, keys[0], "exp"), p.HGet(ctx, keys[1], imageID)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return Image{}, fmt.Errorf("session: redis read image: %w", err)
		}
		if !at.Now.Before(fromMS(exp.Val())) {
			return Image{}, ErrNotFound
		}
		if errors.Is(cur.Err(), redis.Nil) {
			return Image{}, ErrImageNotFound
		}
		var img Image
		if err := json.Unmarshal([]byte(cur.Val()), &img); err != nil {
			return Image{}, fmt.Errorf("session: decode image: %w", err)
		}
		keep, err := change(&img)
		if err != nil {
			return Image{}, err
		}
		next := ""
		if keep {
			b, err := json.Marshal(img)
			if err != nil {
				return Image{}, fmt.Errorf("session: encode image: %w", err)
			}
			next = string(b)
		}
		res, err := r.run(ctx, id, "cas", at.Now, at.Expires, imageID, cur.Val(), next)
		if err != nil {
			return Image{}, err
		}
		if res[0] == "conflict" {
			continue
		}
		if err := openError(res[0]); err != nil {
			return Image{}, err
		}
		r.afterTouch(ctx, res, at.Expires)
		return img, nil
	}
	return Image{}, errors.New("session: redis: image kept changing; try again")
}

//go:build !linux

package loadtest

import "errors"

// pidUsage needs /proc; elsewhere --server-pid is refused.
func pidUsage(int) (usage, error) {
	return usage{}, errors.New("--server-pid needs Linux's /proc")
}

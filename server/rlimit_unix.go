//go:build unix

package server

import "syscall"

// descriptorLimit is the process's open-file limit (the soft limit, which
// the Go runtime raises to the hard one at start).
func descriptorLimit() (int, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 0, false
	}
	return int(r.Cur), true
}

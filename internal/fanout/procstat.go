package fanout

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc (USER_HZ), 100 on every
// Linux this runs on; Go cannot ask sysconf without cgo.
const userHZ = 100

// rssBytes reads VmRSS of pid from /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("reading the server's RSS: %w", err)
	}
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := strings.Fields(string(rest)) // "123456 kB"
			if len(f) == 2 && f[1] == "kB" {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err == nil {
					return kb << 10, nil
				}
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// procCPU returns the user+system CPU time pid has used.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields restart after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state is field 3, so utime (14) and stime (15) are f[11], f[12].
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("malformed /proc stat")
	}
	return time.Duration(u+s) * time.Second / userHZ, nil
}

// selfCPU returns the CPU time this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU returns the CPU time of every process but exclude, by pid.
// It reads /proc/<pid>/stat for each: the machine-wide /proc/stat counts
// in timer ticks, which on this kind of VM misses much of a bursty
// workload's time, while per-process times are exact.
func processCPU(exclude ...int) map[int]time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make(map[int]time.Duration, len(entries))
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || slices.Contains(exclude, pid) {
			continue
		}
		if d, err := procCPU(pid); err == nil {
			out[pid] = d
		}
	}
	return out
}

// othersCPU is the CPU the processes in b used since a: for a process
// started in between, all of its time. Processes that ended in between
// are missed, so this is a lower bound.
func othersCPU(a, b map[int]time.Duration) time.Duration {
	var sum time.Duration
	for pid, d := range b {
		sum += d - a[pid]
	}
	return sum
}

// cpuSample is one reading of the CPU counters, for a window's usage.
type cpuSample struct {
	at     time.Time
	server time.Duration // -1 when unknown
	aux    time.Duration // -1 when unknown
	self   time.Duration
	others map[int]time.Duration
}

func sampleCPU(pid, aux int) cpuSample {
	s := cpuSample{at: time.Now(), server: -1, aux: -1, self: selfCPU()}
	if pid > 0 {
		if d, err := procCPU(pid); err == nil {
			s.server = d
		}
	}
	if aux > 0 {
		if d, err := procCPU(aux); err == nil {
			s.aux = d
		}
	}
	s.others = processCPU(os.Getpid(), pid, aux)
	return s
}

// CPUUsage is where the machine's CPU went during the measured window,
// in cores (1.0 is one core busy all the time).
type CPUUsage struct {
	Server    float64 `json:"server_cores"` // -1 without --pid
	Aux       float64 `json:"aux_cores"`    // -1 without --aux-pid
	Generator float64 `json:"generator_cores"`
	// Others is every other process's use (other work sharing the cores,
	// which is noise in the numbers), a lower bound.
	Others float64 `json:"others_cores"`
	Cores  int     `json:"cores"`
}

func cpuUsage(a, b cpuSample, cores int) CPUUsage {
	wall := b.at.Sub(a.at).Seconds()
	u := CPUUsage{Server: -1, Aux: -1, Cores: cores}
	if wall <= 0 {
		return u
	}
	if a.server >= 0 && b.server >= 0 {
		u.Server = round2((b.server - a.server).Seconds() / wall)
	}
	if a.aux >= 0 && b.aux >= 0 {
		u.Aux = round2((b.aux - a.aux).Seconds() / wall)
	}
	u.Generator = round2((b.self - a.self).Seconds() / wall)
	u.Others = round2(othersCPU(a.others, b.others).Seconds() / wall)
	return u
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

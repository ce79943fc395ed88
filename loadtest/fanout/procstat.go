package fanout

import (
	"bytes"
	"errors"
	"fmt"
	"os"
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

// machineCPU returns the busy and total CPU time of the whole machine
// (all cores), from the first line of /proc/stat.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, s := range f[1:] {
		n, _ := strconv.ParseInt(s, 10, 64)
		if i >= 8 { // guest time is already counted in user
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * time.Second / userHZ, time.Duration(sum) * time.Second / userHZ
}

// cpuSample is one reading of the CPU counters, for a window's usage.
type cpuSample struct {
	at        time.Time
	server    time.Duration // -1 when unknown
	aux       time.Duration // -1 when unknown
	self      time.Duration
	busy, all time.Duration
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
	s.busy, s.all = machineCPU()
	return s
}

// CPUUsage is where the machine's CPU went during the measured window,
// in cores (1.0 is one core busy all the time).
type CPUUsage struct {
	Server    float64 `json:"server_cores"` // -1 without --pid
	Aux       float64 `json:"aux_cores"`    // -1 without --aux-pid
	Generator float64 `json:"generator_cores"`
	// Machine is every process's use, the bench's and others' (the cores
	// may be shared with other work, which is noise).
	Machine float64 `json:"machine_cores"`
	Cores   int     `json:"cores"`
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
	if b.all > a.all {
		// /proc/stat sums every core; scale its share to cores.
		u.Machine = round2(float64(b.busy-a.busy) / float64(b.all-a.all) * float64(cores))
	}
	return u
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

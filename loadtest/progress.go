package loadtest

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// plainInterval is how often plain progress lines are printed when the
// output is not a terminal (CI logs): often enough to show life, rarely
// enough not to flood the log.
const plainInterval = 5 * time.Second

// Progress shows GP rounds completed: a bar on a terminal, a line every
// few seconds otherwise. Its methods are safe for concurrent use.
type Progress struct {
	total int // -1 when unknown (a --duration run)
	bar   *progressbar.ProgressBar

	mu    sync.Mutex
	done  int
	w     io.Writer
	start time.Time
	stop  chan struct{}
	wg    sync.WaitGroup
}

// NewProgress returns a progress display on w for total GP rounds (-1 if
// unknown). Call Round after each round and Finish once at the end.
func NewProgress(w io.Writer, total int) *Progress {
	p := &Progress{total: total, w: w, start: time.Now(), stop: make(chan struct{})}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription("GP rounds"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
		return p
	}
	p.wg.Go(p.printLines)
	return p
}

// Round counts one finished GP round.
func (p *Progress) Round() {
	p.mu.Lock()
	p.done++
	p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Add(1)
	}
}

// Finish ends the display; the plain form prints a last line.
func (p *Progress) Finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.line()
}

func (p *Progress) printLines() {
	t := time.NewTicker(plainInterval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
			p.line()
		}
	}
}

func (p *Progress) line() {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	elapsed := time.Since(p.start).Truncate(100 * time.Millisecond)
	if p.total < 0 {
		fmt.Fprintf(p.w, "loadtest: %d GP rounds done (%s)\n", done, elapsed)
		return
	}
	fmt.Fprintf(p.w, "loadtest: %d/%d GP rounds done (%s)\n", done, p.total, elapsed)
}

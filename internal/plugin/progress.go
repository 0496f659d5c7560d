package plugin

import (
	"fmt"
	"io"
	"time"
)

// progress prints one line on ErrOut, rewritten in place at most every
// progressEvery: bytes received, the total and the rate. It is only shown
// on a terminal (Plugin.Progress); elsewhere it prints nothing.
type progress struct {
	p         *Plugin
	offset    int64 // bytes there before this download
	size      int64 // the object's size; -1 unknown
	received  int64
	started   time.Time
	lastShown time.Time
	shown     bool
}

const progressEvery = 200 * time.Millisecond

func (p *Plugin) newProgress(offset, size int64) *progress {
	now := p.Clock.Now()
	return &progress{p: p, offset: offset, size: size, started: now}
}

func (pr *progress) reader(r io.Reader) io.Reader {
	if !pr.p.Progress {
		return r
	}
	return readerFunc(func(b []byte) (int, error) {
		n, err := r.Read(b)
		pr.received += int64(n)
		if now := pr.p.Clock.Now(); now.Sub(pr.lastShown) >= progressEvery {
			pr.lastShown = now
			pr.show(now)
		}
		return n, err
	})
}

func (pr *progress) show(now time.Time) {
	pr.shown = true
	line := bytesText(pr.offset + pr.received)
	if pr.size > 0 {
		line += fmt.Sprintf(" / %s (%d%%)", bytesText(pr.size), (pr.offset+pr.received)*100/pr.size)
	}
	if elapsed := now.Sub(pr.started); elapsed > 0 {
		line += fmt.Sprintf("  %s/s", bytesText(int64(float64(pr.received)/elapsed.Seconds())))
	}
	// \r back to the start of the line, \x1b[K clears what is left of the
	// previous one.
	_, _ = fmt.Fprintf(pr.p.ErrOut, "\r%s\x1b[K", line)
}

// done shows the final count and ends the line.
func (pr *progress) done() {
	if !pr.p.Progress {
		return
	}
	pr.show(pr.p.Clock.Now())
	_, _ = fmt.Fprintln(pr.p.ErrOut)
}

// bytesText is a byte count in binary units (42 B, 1.5 KiB, 3.2 GiB).
func bytesText(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	value, unit := float64(n)/1024, 0
	for value >= 1024 && unit < len(units)-1 {
		value /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %s", value, units[unit])
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

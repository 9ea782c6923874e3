package cli

import (
	"os"
	"runtime/debug"
)

// serveGCPercent and serveMemoryLimit tune the collector for a box that runs docket and
// little else: collecting a quarter as often as Go's default (GOGC=100) took a tenth of
// the CPU off the case pipeline, and the soft limit keeps the heap from growing past
// 256 MiB before it collects anyway.
const (
	serveGCPercent   = 400
	serveMemoryLimit = 256 << 20
)

// TuneGC applies serve's collector settings; GOGC or GOMEMLIMIT in the environment win.
// The benchmarks call it too, so they measure what serve runs with, and put the previous
// settings back with the returned func.
func TuneGC() (restore func()) {
	percent, limit := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1)
	debug.SetGCPercent(percent)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(serveMemoryLimit)
	}
	return func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	}
}

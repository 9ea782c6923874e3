// Package queues holds what cases need besides storage: the dispatcher that starts runs
// on due cases at each trigger's concurrency, and the rules of the case tools.
package queues

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// maxPostpone bounds how far a case can be put off; further is a mistake, not a plan.
const maxPostpone = 366 * 24 * time.Hour

// ParseUntil reads when a postponed case is due: a span from now ("90s", "30m", "2h",
// "1d", "2w", "1h30m") or a time (RFC 3339, or a date "2026-12-01" meaning its start in
// UTC). The time must be in the future and at most a year away.
func ParseUntil(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	bad := fmt.Errorf("until %q: write a span such as 2h, 1d or 1w, or a time such as 2026-12-01T09:00:00Z", s)
	var at time.Time
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		at = t
	} else if t, err := time.Parse(time.DateOnly, s); err == nil {
		at = t
	} else if d, ok := parseSpan(s); ok {
		at = now.Add(d)
	} else {
		return time.Time{}, bad
	}
	switch {
	case !at.After(now):
		return time.Time{}, fmt.Errorf("until %q: %s is not in the future", s, at.UTC().Format(time.RFC3339))
	case at.Sub(now) > maxPostpone:
		return time.Time{}, fmt.Errorf("until %q: at most a year ahead", s)
	}
	return at.UTC(), nil
}

// parseSpan reads "Nd" and "Nw" besides Go durations; spans are positive.
func parseSpan(s string) (time.Duration, bool) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			v, err := strconv.Atoi(n)
			if err != nil || v <= 0 || v > 400 {
				return 0, false
			}
			return time.Duration(v) * unit, true
		}
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d > 0
}

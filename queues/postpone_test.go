package queues

import (
	"testing"
	"time"
)

func TestParseUntil(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2h":                        now.Add(2 * time.Hour),
		" 90s ":                     now.Add(90 * time.Second),
		"1h30m":                     now.Add(90 * time.Minute),
		"1d":                        now.Add(24 * time.Hour),
		"2w":                        now.Add(14 * 24 * time.Hour),
		"2026-12-01":                time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		"2026-11-25T12:00:00Z":      now.Add(2 * time.Hour),
		"2026-11-25T12:00:00+01:00": now.Add(time.Hour),
	} {
		got, err := ParseUntil(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseUntil(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "soon", "tomorrow", "-2h", "0s", "0d", "1.5d", "2026-11-24", "2026-11-25T09:00:00Z", "2y", "500d", "9999999999h"} {
		if got, err := ParseUntil(in, now); err == nil {
			t.Errorf("ParseUntil(%q) = %v, want an error", in, got)
		}
	}
}

// FuzzParseUntil: any input either fails with a message or gives a time after now and
// within the limit; it never panics.
func FuzzParseUntil(f *testing.F) {
	for _, s := range []string{"2h", "1d", "3w", "2026-12-01", "2026-12-01T09:00:00Z", "soon", "-1h", "1e9h", "01d", "7d7"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseUntil(s, now)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if !got.After(now) || got.Sub(now) > maxPostpone {
			t.Fatalf("ParseUntil(%q) = %v: outside (now, now+1y]", s, got)
		}
	})
}

package web

import (
	"math"
	"sync"
	"time"
)

// rateLimiter is a token bucket per API key: limit tokens, refilled evenly over window.
type rateLimiter struct {
	mu      sync.Mutex
	limit   float64
	perSec  float64
	buckets map[string]*bucket
	now     func() time.Time
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newRateLimiter(limit int, window time.Duration) *rateLimiter {
	return &rateLimiter{limit: float64(limit), perSec: float64(limit) / window.Seconds(),
		buckets: map[string]*bucket{}, now: time.Now}
}

// take spends one token for key. It returns whether the request may proceed, the tokens
// left, the seconds until the bucket is full again, and (when refused) the seconds until
// the next token.
func (l *rateLimiter) take(key string) (ok bool, remaining, reset, retryAfter int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.limit, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.limit, b.tokens+now.Sub(b.last).Seconds()*l.perSec)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		ok = true
	} else {
		retryAfter = int(math.Ceil((1 - b.tokens) / l.perSec))
	}
	return ok, int(b.tokens), int(math.Ceil((l.limit - b.tokens) / l.perSec)), retryAfter
}

// peek reports whether key has a token left, without spending it, and if not, the
// seconds until it has.
func (l *rateLimiter) peek(key string) (ok bool, retryAfter int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return true, 0
	}
	tokens := math.Min(l.limit, b.tokens+l.now().Sub(b.last).Seconds()*l.perSec)
	if tokens >= 1 {
		return true, 0
	}
	return false, int(math.Ceil((1 - tokens) / l.perSec))
}

// sweep drops buckets that have refilled completely, so memory is bounded by the keys
// active within one window.
func (l *rateLimiter) sweep(now time.Time) {
	if now.Sub(l.swept) < time.Minute {
		return
	}
	l.swept = now
	full := time.Duration(l.limit / l.perSec * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
}

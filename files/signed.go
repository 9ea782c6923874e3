package files

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// DefaultURLTTL is how long a signed URL works unless asked otherwise.
const DefaultURLTTL = 15 * time.Minute

// Query parameters of a signed URL. Every parameter but the signature is covered by it.
const (
	ParamTeam      = "team"
	ParamExpires   = "expires"
	ParamSignature = "signature"
)

// Why a signed URL is refused; the API answers 403 to both.
var (
	ErrURLExpired   = errors.New("signed URL expired")
	ErrURLSignature = errors.New("signed URL signature does not match")
)

// Signer makes and checks signed URLs: HMAC-SHA256 over the method, the URL path, the
// team, the expiry and any other query parameter, so a URL works for one method, one
// path and one team until it expires, without an API key.
type Signer struct {
	key []byte
	now func() time.Time
}

// NewSigner derives the signing key from the server's master key, so signed URLs stay
// valid across restarts and no other secret can be used to forge them.
func NewSigner(master []byte) *Signer {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("docket signed file URLs v1"))
	return &Signer{key: m.Sum(nil), now: time.Now}
}

// WithClock returns a signer that reads time from now (tests).
func (s *Signer) WithClock(now func() time.Time) *Signer {
	return &Signer{key: s.key, now: now}
}

func (s *Signer) mac(method, path string, q url.Values) string {
	c := url.Values{}
	for k, v := range q {
		if k != ParamSignature {
			c[k] = v
		}
	}
	m := hmac.New(sha256.New, s.key)
	// url.Values.Encode sorts by key: one canonical form for the same parameters.
	fmt.Fprintf(m, "%s\n%s\n%s", method, path, c.Encode())
	return hex.EncodeToString(m.Sum(nil))
}

// Sign returns the query string for a URL that allows method on path for team until
// now+ttl. extra parameters (e.g. the uploading user) are carried and signed too.
func (s *Signer) Sign(method, path, team string, ttl time.Duration, extra url.Values) (url.Values, time.Time) {
	exp := s.now().Add(ttl).Truncate(time.Second)
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set(ParamTeam, team)
	q.Set(ParamExpires, strconv.FormatInt(exp.Unix(), 10))
	q.Set(ParamSignature, s.mac(method, path, q))
	return q, exp
}

// Verify checks a request's method, path and query against its signature and expiry and
// returns the team it was signed for.
func (s *Signer) Verify(method, path string, q url.Values) (string, error) {
	want := s.mac(method, path, q)
	if !hmac.Equal([]byte(want), []byte(q.Get(ParamSignature))) {
		return "", ErrURLSignature
	}
	exp, err := strconv.ParseInt(q.Get(ParamExpires), 10, 64)
	if err != nil {
		return "", ErrURLSignature
	}
	if !s.now().Before(time.Unix(exp, 0)) {
		return "", fmt.Errorf("%w at %s", ErrURLExpired, time.Unix(exp, 0).UTC().Format(time.RFC3339))
	}
	return q.Get(ParamTeam), nil
}

package runtime

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// DefaultSignatureHeader carries an inbound delivery's HMAC: "sha256=<hex of
// HMAC-SHA256(secret, raw body)>", the scheme GitHub's X-Hub-Signature-256 uses too.
const DefaultSignatureHeader = "X-Docket-Signature"

// SignatureTolerance is how far a Standard Webhooks timestamp may be from now: older
// deliveries are refused as replays.
const SignatureTolerance = 5 * time.Minute

// NewSigningSecret returns a fresh inbound signing secret in the Standard Webhooks form.
func NewSigningSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func sealKey(master []byte, agentID string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte("docket/inbound-signing-secret/v1/" + agentID))
	return m.Sum(nil)
}

// SealSecret encrypts an inbound trigger's signing secret (AES-256-GCM, key derived from
// the master key and bound to the agent), so the database alone does not reveal it.
func SealSecret(master []byte, agentID, secret string) ([]byte, error) {
	aead, err := gcm(master, agentID)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, []byte(secret), nil), nil
}

// OpenSecret decrypts what SealSecret sealed.
func OpenSecret(master []byte, agentID string, sealed []byte) (string, error) {
	aead, err := gcm(master, agentID)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize() {
		return "", errors.New("sealed secret too short")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return "", fmt.Errorf("open signing secret (was the master key changed?): %w", err)
	}
	return string(plain), nil
}

func gcm(master []byte, agentID string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(sealKey(master, agentID))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// ErrBadSignature is an inbound delivery whose signature is missing or wrong.
var ErrBadSignature = errors.New("bad signature")

// VerifyInbound accepts a delivery signed with secret in either scheme: header (default
// X-Docket-Signature) = "sha256=<hex HMAC-SHA256(secret, body)>", or Standard Webhooks
// (webhook-id, webhook-timestamp within SignatureTolerance, webhook-signature "v1,<base64
// HMAC-SHA256(key, id.timestamp.body)>", key = the base64 after whsec_). get reads a
// request header.
func VerifyInbound(secret, header string, get func(string) string, body []byte, now time.Time) error {
	if v := strings.TrimSpace(get(header)); v != "" {
		got, err := hex.DecodeString(strings.TrimPrefix(v, "sha256="))
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		if err != nil || !hmac.Equal(got, m.Sum(nil)) {
			return fmt.Errorf("%w: %s does not match the body: send sha256=<hex of HMAC-SHA256 of the raw body keyed with the trigger's signing secret>", ErrBadSignature, header)
		}
		return nil
	}
	id, stamp, sigs := get("webhook-id"), get("webhook-timestamp"), get("webhook-signature")
	if id == "" || stamp == "" || sigs == "" {
		return fmt.Errorf("%w: this webhook URL requires a signature: send %s: sha256=<hex HMAC-SHA256 of the raw body>, or Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature)", ErrBadSignature, header)
	}
	sec, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil || math.Abs(float64(now.Unix()-sec)) > SignatureTolerance.Seconds() {
		return fmt.Errorf("%w: webhook-timestamp %q is not within %s of the server's time", ErrBadSignature, stamp, SignatureTolerance)
	}
	key := []byte(secret)
	if b64, ok := strings.CutPrefix(secret, "whsec_"); ok {
		if k, err := base64.StdEncoding.DecodeString(b64); err == nil {
			key = k
		}
	}
	want := signature(key, id, stamp, body)
	for _, s := range strings.Fields(sigs) {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return fmt.Errorf("%w: no webhook-signature matches the body", ErrBadSignature)
}

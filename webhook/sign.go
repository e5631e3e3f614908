package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// The headers of a delivery.
const (
	HeaderSignature = "X-Imagehub-Signature"
	HeaderTimestamp = "X-Imagehub-Timestamp"
	HeaderEvent     = "X-Imagehub-Event"
	HeaderDelivery  = "X-Imagehub-Delivery"
)

// Sign is the X-Imagehub-Signature of body sent at ts (Unix seconds, the
// X-Imagehub-Timestamp): "sha256=" and the hex HMAC-SHA256, keyed with the
// endpoint's secret, of "<ts>.<body>". The timestamp is inside the MAC, so
// a receiver that refuses old timestamps refuses replays.
func Sign(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a delivery as a receiver should: the signature matches and
// the timestamp is within tolerance of now. The hub's own tests use it.
func Verify(secret, signature, timestamp string, body []byte, now time.Time, tolerance time.Duration) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return false
	}
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature))
}

// newSecret makes a secret for an endpoint registered without one.
func newSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return "whsec_" + hex.EncodeToString(b)
}

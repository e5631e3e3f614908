// Package signedurl makes and checks the short-lived URLs under which the
// hub serves one image to a model that fetches it itself (a Label Studio
// ML backend): GET /api/v1/signed/images/{id}?expires=<unix>&signature=<s>,
// where s is the HMAC-SHA256 of the image id and the expiry under a key
// that every process of the deployment shares through the database
// (hub_secrets), so that any replica behind BASE_URL can check a URL
// another made. A URL opens that image only, and only until it expires.
package signedurl

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/queries"
)

// Path is the route's prefix; the image id follows it.
const Path = "/api/v1/signed/images/"

// keyName names the key in hub_secrets.
const keyName = "url_signing"

// ErrInvalid is a URL that is not signed for this image, or has expired.
var ErrInvalid = errors.New("the link is not valid for this image or has expired")

// Signer makes and checks signed image URLs. Its key is read (or made, by
// the first process that asks) on first use.
type Signer struct {
	db   queries.DBTX
	base string // BASE_URL, without a trailing slash

	mu  sync.Mutex
	key []byte
}

// New returns a Signer whose URLs start with baseURL, the hub's address
// as models reach it.
func New(db queries.DBTX, baseURL string) *Signer {
	return &Signer{db: db, base: strings.TrimRight(baseURL, "/")}
}

func (s *Signer) secret(ctx context.Context) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	q := queries.New()
	for range 2 {
		// A second try covers another process inserting between this
		// statement's snapshot and its insert.
		k, err := q.HubSecretEnsure(ctx, s.db, queries.HubSecretEnsureParams{Name: keyName, Secret: []byte(rand.Text() + rand.Text())})
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("error reading the URL signing key: %w", err)
		}
		s.key = k
		return k, nil
	}
	return nil, errors.New("error reading the URL signing key: none was stored")
}

func mac(key []byte, id uuid.UUID, expires int64) string {
	h := hmac.New(sha256.New, key)
	fmt.Fprintf(h, "image:%s:%d", id, expires)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// ImageURL is the URL of image id, valid until expires.
func (s *Signer) ImageURL(ctx context.Context, id uuid.UUID, expires time.Time) (string, error) {
	key, err := s.secret(ctx)
	if err != nil {
		return "", err
	}
	e := expires.Unix()
	v := url.Values{"expires": {strconv.FormatInt(e, 10)}, "signature": {mac(key, id, e)}}
	return s.base + Path + id.String() + "?" + v.Encode(), nil
}

// Check reports nil when expires and signature sign image id and the
// expiry is after now; ErrInvalid otherwise.
func (s *Signer) Check(ctx context.Context, id uuid.UUID, expires, signature string, now time.Time) error {
	key, err := s.secret(ctx)
	if err != nil {
		return err
	}
	e, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || !now.Before(time.Unix(e, 0)) {
		return ErrInvalid
	}
	if !hmac.Equal([]byte(mac(key, id, e)), []byte(signature)) {
		return ErrInvalid
	}
	return nil
}

package signedurl

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
)

// TestSignedURLs: a URL opens its image until it expires, in any process
// of the deployment (a second Signer on the same database), and nothing
// else.
func TestSignedURLs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	a, b := New(pool, "http://hub.example/"), New(pool, "http://hub.example")
	id, other := uuid.New(), uuid.New()
	now := time.Now()
	raw, err := a.ImageURL(ctx, id, now.Add(time.Minute))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(raw, "http://hub.example"+Path+id.String()+"?"), raw)
	u, err := url.Parse(raw)
	require.NoError(t, err)
	e, s := u.Query().Get("expires"), u.Query().Get("signature")
	require.NoError(t, b.Check(ctx, id, e, s, now), "another process checks it")
	require.ErrorIs(t, b.Check(ctx, id, e, s, now.Add(2*time.Minute)), ErrInvalid, "expired")
	require.ErrorIs(t, b.Check(ctx, other, e, s, now), ErrInvalid, "another image")
	forged := s[:len(s)-1] + map[bool]string{true: "B", false: "A"}[strings.HasSuffix(s, "A")]
	require.ErrorIs(t, b.Check(ctx, id, e, forged, now), ErrInvalid, "another signature")
	require.ErrorIs(t, b.Check(ctx, id, "x", s, now), ErrInvalid, "no expiry")
}

package account_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/queries"
)

// TestBuiltinTrainerToken: hubs starting together share one service
// account, which cannot sign in; each gets a live trainer token of its own
// that ends when revoked; an account someone made with a password under
// the address is never handed a token.
func TestBuiltinTrainerToken(t *testing.T) {
	t.Parallel()
	tb := setup(t, account.Limits{})
	ctx := context.Background()
	q := queries.New()

	var wg sync.WaitGroup
	toks := make([]account.MintedToken, 3)
	errs := make([]error, 3)
	for i := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			toks[i], errs[i] = tb.accounts.BuiltinTrainerToken(ctx, time.Hour)
		}()
	}
	wg.Wait()
	for i := range toks {
		require.NoError(t, errs[i])
		require.Equal(t, toks[0].UserID, toks[i].UserID, "one service account")
		row, err := q.APITokenGetUser(ctx, tb.pool, auth.HashSecret(toks[i].Secret))
		require.NoError(t, err)
		require.True(t, row.Trainer, "a trainer token")
		require.Equal(t, auth.RoleContributor, row.User.Role, "the least role")
		require.NotNil(t, toks[i].ID)
	}
	require.NotEqual(t, toks[0].Secret, toks[1].Secret)
	tokens, err := tb.accounts.Tokens(ctx, toks[0].UserID)
	require.NoError(t, err)
	require.Len(t, tokens, 3)
	require.WithinDuration(t, time.Now().Add(time.Hour), *tokens[0].ExpiresAt, time.Minute)

	_, err = tb.accounts.Authenticate(ctx, account.Login{Email: account.BuiltinTrainerEmail, Password: "correct horse battery"}, "1.2.3.4")
	require.Equal(t, http.StatusUnauthorized, statusOf(err), "nobody signs in as the service account")

	require.NoError(t, tb.accounts.RevokeToken(ctx, toks[0].UserID, toks[0].ID))
	_, err = q.APITokenGetUser(ctx, tb.pool, auth.HashSecret(toks[0].Secret))
	require.Error(t, err, "a revoked token ends")
	_, err = q.APITokenGetUser(ctx, tb.pool, auth.HashSecret(toks[1].Secret))
	require.NoError(t, err, "the others live on")

	other := setup(t, account.Limits{})
	_, err = other.accounts.Create(ctx, account.SignUp{Email: account.BuiltinTrainerEmail, Name: "Mallory", Password: "correct horse battery"}, auth.RoleContributor)
	require.NoError(t, err)
	_, err = other.accounts.BuiltinTrainerToken(ctx, time.Hour)
	require.ErrorContains(t, err, "has a password")
}

package account_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/problem"
)

type testBundle struct {
	pool     *pgxpool.Pool
	accounts *account.Service
}

func setup(t *testing.T, limits account.Limits) *testBundle {
	t.Helper()
	pool := dbtest.NewPool(t)
	limits.PasswordCost = auth.MinPasswordCost // cheap under the race detector
	return &testBundle{pool: pool, accounts: account.NewService(pool, limits)}
}

const password = "correct horse battery"

func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if e, ok := problem.As(err); ok {
		return e.Status
	}
	return http.StatusInternalServerError
}

func TestAuthenticateParallelGuesses(t *testing.T) {
	t.Parallel()
	tb := setup(t, account.Limits{FreeAttempts: 4, FreeAttemptsPerClient: 1000, FirstDelay: time.Minute, MaxDelay: time.Hour, FailureMemory: time.Hour})
	ctx := context.Background()
	_, err := tb.accounts.Create(ctx, account.SignUp{Email: "ada@example.com", Name: "Ada", Password: password}, auth.RoleAdmin)
	require.NoError(t, err)

	// 60 wrong guesses at once: only the free attempts are checked, and a
	// refusal is always 429. (Not the right password among them: a
	// success clears its pair's count, by design, so guesses decided after
	// it would be checked again; with a fast hash that happens.)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := fmt.Sprintf("wrong password %d", i)
			_, err := tb.accounts.Authenticate(ctx, account.Login{Email: "ada@example.com", Password: pw}, "203.0.113.5")
			mu.Lock()
			counts[statusOf(err)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	require.Equal(t, 56, counts[http.StatusTooManyRequests], "%v", counts)
	require.Equal(t, 4, counts[http.StatusUnauthorized], "%v", counts)

	// Another client is not slowed down at all.
	_, err = tb.accounts.Authenticate(ctx, account.Login{Email: "ada@example.com", Password: password}, "198.51.100.7")
	require.NoError(t, err)
}

func TestSetupCodeRules(t *testing.T) {
	t.Parallel()
	tb := setup(t, account.Limits{SignupsPerClient: 100, SignupWindow: time.Hour})
	ctx := context.Background()
	code, err := tb.accounts.IssueSetupCode(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, code)

	u, err := tb.accounts.Register(ctx, account.SignUp{Email: "first@example.com", Name: "First", Password: password}, "c")
	require.NoError(t, err)
	require.Equal(t, auth.RoleContributor, u.Role, "no code, no admin")

	// Creating an admin from the command line spends the codes too.
	_, err = tb.accounts.Create(ctx, account.SignUp{Email: "root@example.com", Name: "Root", Password: password}, auth.RoleAdmin)
	require.NoError(t, err)
	_, err = tb.accounts.Register(ctx, account.SignUp{Email: "late@example.com", Name: "Late", Password: password, SetupCode: code}, "c")
	require.Equal(t, http.StatusForbidden, statusOf(err))
	var n int
	require.NoError(t, tb.pool.QueryRow(ctx, "SELECT count(*) FROM setup_codes").Scan(&n))
	require.Zero(t, n)
	again, err := tb.accounts.IssueSetupCode(ctx)
	require.NoError(t, err)
	require.Empty(t, again)
}

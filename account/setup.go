package account

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"net/http"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
)

// A setup code lets whoever can read the server's output make the first
// admin from the sign-up page. Codes are random, stored only as SHA-256 in
// PostgreSQL (so any replica accepts any of them), used once, and worthless
// once the site has an admin.

// IssueSetupCode makes a new setup code while the site has no admin and
// returns it; with an admin it returns "".
func (s *Service) IssueSetupCode(ctx context.Context) (string, error) {
	var code string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(roleLockKey)); err != nil {
			return fmt.Errorf("error taking role lock: %w", err)
		}
		exists, err := s.q.UserAdminExists(ctx, tx)
		if err != nil {
			return fmt.Errorf("error looking for an admin: %w", err)
		}
		if exists {
			return nil
		}
		b := make([]byte, 15) // 120 bits
		_, _ = rand.Read(b)
		raw := base32.StdEncoding.EncodeToString(b)
		var groups []string
		for i := 0; i < len(raw); i += 4 {
			groups = append(groups, raw[i:min(i+4, len(raw))])
		}
		code = strings.Join(groups, "-")
		if err := s.q.SetupCodeInsert(ctx, tx, setupCodeHash(code)); err != nil {
			return fmt.Errorf("error storing setup code: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return code, nil
}

// NeedsAdmin reports whether the site has no admin yet, so that the sign-up
// page asks for a setup code.
func (s *Service) NeedsAdmin(ctx context.Context) (bool, error) {
	exists, err := s.q.UserAdminExists(ctx, s.pool)
	if err != nil {
		return false, fmt.Errorf("error looking for an admin: %w", err)
	}
	return !exists, nil
}

// setupCodeHash is how a code is stored: dashes, spaces and case do not
// matter, so a code copied from a log line with its grouping still works.
func setupCodeHash(code string) []byte {
	norm := strings.ToUpper(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(code))
	return auth.HashSecret(norm)
}

var (
	errSetupCodeWrong = problem.New(http.StatusForbidden, "invalid_setup_code", "setup_code",
		"This setup code is wrong or has been used. Copy it from the output of `imagehub serve`, or leave the field empty for an ordinary account.")
	errSetupCodeSpent = problem.New(http.StatusForbidden, "invalid_setup_code", "setup_code",
		"This site already has an admin, so setup codes no longer work. Leave the field empty for an ordinary account.")
)

// redeemSetupCode uses up code inside tx, which holds the role lock, or
// refuses it. Once redeemed, every other code goes too.
func (s *Service) redeemSetupCode(ctx context.Context, tx pgx.Tx, code string) error {
	exists, err := s.q.UserAdminExists(ctx, tx)
	if err != nil {
		return fmt.Errorf("error looking for an admin: %w", err)
	}
	if exists {
		return errSetupCodeSpent
	}
	n, err := s.q.SetupCodeTake(ctx, tx, setupCodeHash(code))
	if err != nil {
		return fmt.Errorf("error checking setup code: %w", err)
	}
	if n == 0 {
		return errSetupCodeWrong
	}
	if err := s.q.SetupCodeDeleteAll(ctx, tx); err != nil {
		return fmt.Errorf("error deleting setup codes: %w", err)
	}
	return nil
}

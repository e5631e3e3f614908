package account

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// PasswordChange is the change-password form and API body.
type PasswordChange struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

var errWrongPassword = problem.New(http.StatusForbidden, "wrong_password", "current_password", "The current password is wrong.")

// ChangePassword sets a new password once the current one is given, and ends
// every session of the user but keepSession (the one making the change; nil
// for none). Checks of the current password are throttled like sign-ins from
// client, so a stolen session cannot be used to guess it.
func (s *Service) ChangePassword(ctx context.Context, userID uuid.UUID, in PasswordChange, client string, keepSession []byte) error {
	switch {
	case in.CurrentPassword == "":
		return problem.BadInput("missing_field", "current_password", "Enter your current password.")
	case in.NewPassword == "":
		return problem.BadInput("missing_field", "new_password", "Choose a new password.")
	}
	switch auth.CheckPasswordRules(in.NewPassword) {
	case auth.ErrWeakPassword:
		return problem.BadInput("weak_password", "new_password", fmt.Sprintf("The password must be at least %d characters.", auth.MinPasswordLen))
	case auth.ErrLongPassword:
		return problem.BadInput("too_long", "new_password", fmt.Sprintf("The password can be at most %d bytes.", auth.MaxPasswordLen))
	}
	u, err := s.q.UserGet(ctx, s.pool, userID)
	if errors.Is(err, pgx.ErrNoRows) {
		return problem.NotFound
	}
	if err != nil {
		return fmt.Errorf("error reading user: %w", err)
	}
	account := strings.ToLower(u.Email)
	if err := s.admitSignIn(ctx, client, account); err != nil {
		return err
	}
	if len(in.CurrentPassword) > 1024 || !s.pw.Check(u.PasswordHash, in.CurrentPassword) {
		return errWrongPassword
	}
	if err := s.forgetFailure(ctx, client, account); err != nil {
		return err
	}
	hash, err := s.pw.Hash(in.NewPassword)
	if err != nil {
		return err
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.UserSetPassword(ctx, tx, queries.UserSetPasswordParams{ID: userID, PasswordHash: hash}); err != nil {
			return fmt.Errorf("error setting password: %w", err)
		}
		if keepSession == nil {
			keepSession = []byte{}
		}
		if err := s.q.SessionDeleteOthers(ctx, tx, queries.SessionDeleteOthersParams{UserID: userID, KeepIDHash: keepSession}); err != nil {
			return fmt.Errorf("error ending other sessions: %w", err)
		}
		return nil
	})
}

// SignOutEverywhere ends every session of the user and revokes every API
// token: what to do when a device or a token may have been stolen.
func (s *Service) SignOutEverywhere(ctx context.Context, userID uuid.UUID) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.q.SessionDeleteByUser(ctx, tx, userID); err != nil {
			return fmt.Errorf("error ending sessions: %w", err)
		}
		if _, err := s.q.APITokenRevokeAllByUser(ctx, tx, userID); err != nil {
			return fmt.Errorf("error revoking tokens: %w", err)
		}
		return nil
	})
}

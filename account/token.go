package account

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// NewToken is the new-token form and API body.
type NewToken struct {
	Name          string `json:"name"`
	ExpiresInDays *int   `json:"expires_in_days"`
	// ExpiresAt is the other way to say when it expires (RFC 3339).
	ExpiresAt *time.Time `json:"expires_at"`
	// Role "trainer" makes a trainer token (docs/training.md), which only
	// admins may create; empty is an ordinary token.
	Role string `json:"role"`
}

// maxTokenLifetime is the longest expiry a token may be given.
const maxTokenLifetime = 3650 * 24 * time.Hour

func (in *NewToken) validate() error {
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		return problem.BadInput("missing_field", "name", "Give the token a name that says where it is used.")
	case utf8.RuneCountInString(in.Name) > 100:
		return problem.BadInput("too_long", "name", "The name can be at most 100 characters.")
	case in.ExpiresInDays != nil && (*in.ExpiresInDays < 1 || *in.ExpiresInDays > 3650):
		return problem.BadInput("invalid", "expires_in_days", "expires_in_days must be from 1 to 3650, or left out for a token that does not expire.")
	case in.ExpiresInDays != nil && in.ExpiresAt != nil:
		return problem.BadInput("invalid", "expires_at", "Give expires_in_days or expires_at, not both.")
	case in.ExpiresAt != nil && !in.ExpiresAt.After(time.Now()):
		return problem.BadInput("invalid", "expires_at", "expires_at must be in the future.")
	case in.ExpiresAt != nil && in.ExpiresAt.After(time.Now().Add(maxTokenLifetime)):
		return problem.BadInput("invalid", "expires_at", "expires_at can be at most 3650 days away.")
	case in.Role != "" && in.Role != string(auth.RoleTrainer):
		return problem.BadInput("invalid", "role", `role is "trainer" for a trainer token, or left out.`)
	}
	return nil
}

// CreateToken makes an API token for a user and returns its secret, which is
// stored only as a hash and cannot be shown again.
func (s *Service) CreateToken(ctx context.Context, userID uuid.UUID, in NewToken) (string, queries.APIToken, error) {
	if err := in.validate(); err != nil {
		return "", queries.APIToken{}, err
	}
	plain, hash := auth.NewSecret(auth.TokenPrefix)
	expires := in.ExpiresAt
	if in.ExpiresInDays != nil {
		t := time.Now().Add(time.Duration(*in.ExpiresInDays) * 24 * time.Hour)
		expires = &t
	}
	t, err := s.q.APITokenInsert(ctx, s.pool, queries.APITokenInsertParams{
		UserID: userID, Name: in.Name, TokenHash: hash, ExpiresAt: expires, Trainer: in.Role == string(auth.RoleTrainer),
	})
	if err != nil {
		return "", queries.APIToken{}, fmt.Errorf("error creating token: %w", err)
	}
	return plain, t, nil
}

// RevokeToken ends one of the user's tokens; another user's token is not found.
func (s *Service) RevokeToken(ctx context.Context, userID, tokenID uuid.UUID) error {
	n, err := s.q.APITokenRevoke(ctx, s.pool, queries.APITokenRevokeParams{ID: tokenID, UserID: userID})
	if err != nil {
		return fmt.Errorf("error revoking token: %w", err)
	}
	if n == 0 {
		return problem.NotFound
	}
	return nil
}

// Tokens lists the user's tokens, newest first.
func (s *Service) Tokens(ctx context.Context, userID uuid.UUID) ([]queries.APIToken, error) {
	ts, err := s.q.APITokenListByUser(ctx, s.pool, userID)
	if err != nil {
		return nil, fmt.Errorf("error listing tokens: %w", err)
	}
	return ts, nil
}

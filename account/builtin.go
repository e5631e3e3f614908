package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/queries"
)

// BuiltinTrainerEmail names the service account that owns the tokens of the
// trainer `imagehub serve` runs in process (BUILTIN_TRAINER). The .invalid
// domain (RFC 2606) receives no mail and no identity provider can own it;
// the account has no password (an empty hash matches none, as for the
// accounts single sign-on creates), so nobody signs in as it, and its role
// is the least one: a trainer token stands for the trainer role whatever
// its owner's.
const BuiltinTrainerEmail = "builtin-trainer@imagehub.invalid"

// MintedToken is a token minted for a process of the hub itself.
type MintedToken struct {
	Secret     string
	ID, UserID uuid.UUID
}

// BuiltinTrainerToken ensures the built-in trainer's service account and
// mints it a fresh trainer token that ends after life. Each serve mints its
// own at start and revokes it when it stops (several hubs on one database
// each hold theirs); a hub that is killed leaves one that expires after
// life.
func (s *Service) BuiltinTrainerToken(ctx context.Context, life time.Duration) (MintedToken, error) {
	u, err := s.builtinTrainerAccount(ctx)
	if err != nil {
		return MintedToken{}, err
	}
	expires := time.Now().Add(life)
	secret, t, err := s.CreateToken(ctx, u.ID, NewToken{Name: "built-in trainer", ExpiresAt: &expires, Role: string(auth.RoleTrainer)})
	if err != nil {
		return MintedToken{}, fmt.Errorf("error minting the built-in trainer's token: %w", err)
	}
	return MintedToken{Secret: secret, ID: t.ID, UserID: u.ID}, nil
}

func (s *Service) builtinTrainerAccount(ctx context.Context) (queries.User, error) {
	for range 2 {
		u, err := s.q.UserGetByEmail(ctx, s.pool, BuiltinTrainerEmail)
		if err == nil {
			// An account someone made with a password under this address is
			// not the service account: never hand tokens to it.
			if u.PasswordHash != "" {
				return queries.User{}, fmt.Errorf("the account %s has a password, so it is not the built-in trainer's service account; remove it or set BUILTIN_TRAINER=false", BuiltinTrainerEmail)
			}
			return u, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return queries.User{}, fmt.Errorf("error finding the built-in trainer's account: %w", err)
		}
		u, err = s.q.UserInsertWithRole(ctx, s.pool, queries.UserInsertWithRoleParams{
			Email: BuiltinTrainerEmail, Name: "Built-in trainer", PasswordHash: "", Role: auth.RoleContributor,
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			continue // another hub made it just now: read it
		}
		if err != nil {
			return queries.User{}, fmt.Errorf("error creating the built-in trainer's account: %w", err)
		}
		return u, nil
	}
	return queries.User{}, errors.New("error creating the built-in trainer's account: it exists and cannot be read")
}

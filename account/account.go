// Package account is sign-up, sign-in, roles and API tokens: the rules, and the
// database work that carries them out. The web app and the command line both
// call it.
package account

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// Limits bound sign-in attempts.
type Limits struct {
	MaxFailures      int           // per account inside Window
	MaxFailuresPerIP int           // per client address inside Window
	Window           time.Duration // sliding window
}

// Service carries out account operations.
type Service struct {
	pool   *pgxpool.Pool
	q      *queries.Queries
	limits Limits
}

// NewService returns a Service.
func NewService(pool *pgxpool.Pool, limits Limits) *Service {
	return &Service{pool: pool, q: queries.New(), limits: limits}
}

// SignUp is the sign-up form and API body.
type SignUp struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (in *SignUp) validate() error {
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		return problem.BadInput("missing_field", "name", "Enter your name.")
	case utf8.RuneCountInString(in.Name) > 100:
		return problem.BadInput("too_long", "name", "The name can be at most 100 characters.")
	case !utf8.ValidString(in.Name) || strings.ContainsAny(in.Name, "\x00\r\n"):
		return problem.BadInput("invalid", "name", "The name contains characters that are not allowed.")
	case strings.TrimSpace(in.Email) == "":
		return problem.BadInput("missing_field", "email", "Enter your email address.")
	case len(in.Email) > 254:
		return problem.BadInput("too_long", "email", "The email address can be at most 254 characters.")
	case in.Password == "":
		return problem.BadInput("missing_field", "password", "Choose a password.")
	}
	email, err := auth.NormalizeEmail(in.Email)
	if err != nil {
		return problem.BadInput("invalid_email", "email", "Enter an email address like name@example.com.")
	}
	in.Email = email
	switch auth.CheckPasswordRules(in.Password) {
	case auth.ErrWeakPassword:
		return problem.BadInput("weak_password", "password", fmt.Sprintf("The password must be at least %d characters.", auth.MinPasswordLen))
	case auth.ErrLongPassword:
		return problem.BadInput("too_long", "password", fmt.Sprintf("The password can be at most %d bytes.", auth.MaxPasswordLen))
	}
	return nil
}

// roleLockKey serialises sign-ups and role changes, so that exactly one first
// account becomes admin and the last admin cannot be demoted by a race.
const roleLockKey = 0x726f6c6573 // "roles"

// Create stores a new account. The very first account becomes admin, whatever
// role was asked for; later ones get role.
func (s *Service) Create(ctx context.Context, in SignUp, role auth.Role) (queries.User, error) {
	if err := in.validate(); err != nil {
		return queries.User{}, err
	}
	if !role.Valid() {
		return queries.User{}, problem.BadInput("invalid_role", "role", "role must be one of contributor, reviewer, premium, admin.")
	}
	hash, err := auth.HashPassword(in.Password)
	if err != nil {
		return queries.User{}, err
	}
	var u queries.User
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(roleLockKey)); err != nil {
			return fmt.Errorf("error taking role lock: %w", err)
		}
		u, err = s.q.UserInsert(ctx, tx, queries.UserInsertParams{
			Email: in.Email, Name: in.Name, PasswordHash: hash, Role: role,
		})
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return queries.User{}, problem.Conflict("email_taken", "email", "An account with this email address already exists; sign in instead.")
	}
	if err != nil {
		return queries.User{}, fmt.Errorf("error creating user: %w", err)
	}
	return u, nil
}

// Login is the sign-in form and API body.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

var errBadCredentials = problem.New(http.StatusUnauthorized, "invalid_credentials", "", "Wrong email or password.")

// Authenticate checks a sign-in from client address ip. Failures are counted
// per account and per address in PostgreSQL, so the limit holds across
// replicas; past it the answer is 429 until the window has moved on.
func (s *Service) Authenticate(ctx context.Context, in Login, ip string) (queries.User, error) {
	if strings.TrimSpace(in.Email) == "" {
		return queries.User{}, problem.BadInput("missing_field", "email", "Enter your email address.")
	}
	if in.Password == "" {
		return queries.User{}, problem.BadInput("missing_field", "password", "Enter your password.")
	}
	if len(in.Email) > 254 || len(in.Password) > 1024 {
		return queries.User{}, errBadCredentials
	}
	email := strings.TrimSpace(in.Email)
	subjects := []string{"email:" + strings.ToLower(email), "ip:" + ip}
	if err := s.checkThrottle(ctx, subjects); err != nil {
		return queries.User{}, err
	}
	u, err := s.q.UserGetByEmail(ctx, s.pool, email)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return queries.User{}, fmt.Errorf("error reading user: %w", err)
	}
	if !found {
		auth.WasteTime(in.Password)
	}
	if !found || !auth.CheckPassword(u.PasswordHash, in.Password) {
		for _, subject := range subjects {
			if err := s.q.LoginFailureInsert(ctx, s.pool, subject); err != nil {
				return queries.User{}, fmt.Errorf("error recording sign-in failure: %w", err)
			}
		}
		return queries.User{}, errBadCredentials
	}
	if err := s.q.LoginFailureClear(ctx, s.pool, subjects[0]); err != nil {
		return queries.User{}, fmt.Errorf("error clearing sign-in failures: %w", err)
	}
	return u, nil
}

func (s *Service) checkThrottle(ctx context.Context, subjects []string) error {
	window := int32(s.limits.Window / time.Second)
	limits := []int{s.limits.MaxFailures, s.limits.MaxFailuresPerIP}
	for i, subject := range subjects {
		n, err := s.q.LoginFailureCount(ctx, s.pool, queries.LoginFailureCountParams{Subject: subject, WindowSeconds: window})
		if err != nil {
			return fmt.Errorf("error counting sign-in failures: %w", err)
		}
		if n < int64(limits[i]) {
			continue
		}
		oldest, err := s.q.LoginFailureOldest(ctx, s.pool, queries.LoginFailureOldestParams{Subject: subject, WindowSeconds: window})
		if err != nil {
			return fmt.Errorf("error reading sign-in failures: %w", err)
		}
		wait := max(time.Until(oldest.Add(s.limits.Window)), time.Second)
		e := problem.New(http.StatusTooManyRequests, "too_many_attempts", "",
			fmt.Sprintf("Too many failed sign-in attempts. Wait %s and try again, or ask an admin for help.", humanDuration(wait)))
		e.Headers = map[string]string{"Retry-After": fmt.Sprint(int(wait.Seconds() + 0.5))}
		return e
	}
	return nil
}

func humanDuration(d time.Duration) string {
	switch m := int(d.Round(time.Minute) / time.Minute); {
	case m > 1:
		return fmt.Sprintf("%d minutes", m)
	case m == 1:
		return "a minute"
	}
	return fmt.Sprintf("%d seconds", int(d.Seconds()+0.5))
}

// SetRole changes a user's role. The last admin cannot be demoted, so the site
// always has someone who can manage it.
func (s *Service) SetRole(ctx context.Context, id uuid.UUID, role auth.Role) (queries.User, error) {
	if !role.Valid() {
		return queries.User{}, problem.BadInput("invalid_role", "role", "role must be one of contributor, reviewer, premium, admin.")
	}
	var u queries.User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(roleLockKey)); err != nil {
			return fmt.Errorf("error taking role lock: %w", err)
		}
		cur, err := s.q.UserGet(ctx, tx, id)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound
		}
		if err != nil {
			return fmt.Errorf("error reading user: %w", err)
		}
		if cur.Role == auth.RoleAdmin && role != auth.RoleAdmin {
			admins, err := s.q.UserCountByRole(ctx, tx, auth.RoleAdmin)
			if err != nil {
				return fmt.Errorf("error counting admins: %w", err)
			}
			if admins <= 1 {
				return problem.Conflict("last_admin", "role", "This is the only admin; make someone else admin first.")
			}
		}
		u, err = s.q.UserSetRole(ctx, tx, queries.UserSetRoleParams{ID: id, Role: role})
		if err != nil {
			return fmt.Errorf("error setting role: %w", err)
		}
		return nil
	})
	return u, err
}

// UserByEmail finds an account.
func (s *Service) UserByEmail(ctx context.Context, email string) (queries.User, error) {
	u, err := s.q.UserGetByEmail(ctx, s.pool, strings.TrimSpace(email))
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.User{}, problem.New(http.StatusNotFound, "not_found", "email", "No account has this email address.")
	}
	if err != nil {
		return queries.User{}, fmt.Errorf("error reading user: %w", err)
	}
	return u, nil
}

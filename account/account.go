// Package account is sign-up, sign-in, roles and API tokens: the rules, and the
// database work that carries them out. The web app and the command line both
// call it.
package account

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
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

// Limits bound sign-in and sign-up attempts. Sign-in failures are counted
// per (account, client) and per client; past the free attempts each further
// attempt waits FirstDelay, then twice as long after each failure, up to
// MaxDelay. Nothing is ever locked for everyone: the owner signing in from
// another client starts from their own count.
type Limits struct {
	FreeAttempts          int           // failed sign-ins per (account, client) before delays begin
	FreeAttemptsPerClient int           // failed sign-ins per client, whatever the account, before delays begin
	FirstDelay            time.Duration // the first delay; it doubles with each further failure
	MaxDelay              time.Duration // the longest delay
	FailureMemory         time.Duration // a count with no failure for this long starts again
	SignupsPerClient      int           // sign-ups per client inside SignupWindow
	SignupWindow          time.Duration
	// PasswordCost is the bcrypt cost of new password hashes; 0 means
	// auth.DefaultPasswordCost.
	PasswordCost int
}

// Service carries out account operations.
type Service struct {
	pool   *pgxpool.Pool
	q      *queries.Queries
	limits Limits
	pw     *auth.Passwords
}

// NewService returns a Service.
func NewService(pool *pgxpool.Pool, limits Limits) *Service {
	return &Service{pool: pool, q: queries.New(), limits: limits, pw: auth.NewPasswords(limits.PasswordCost)}
}

// SignUp is the sign-up form and API body.
type SignUp struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
	// SetupCode, while the site has no admin, makes the new account its
	// admin (see IssueSetupCode).
	SetupCode string `json:"setup_code"`
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

// roleLockKey serialises account creation and role changes, so that exactly
// one setup code makes an admin and the last admin cannot be demoted by a race.
const roleLockKey = 0x726f6c6573 // "roles"

// Create stores a new account with the given role. It is for admins and the
// command line: self sign-up goes through Register.
func (s *Service) Create(ctx context.Context, in SignUp, role auth.Role) (queries.User, error) {
	if err := in.validate(); err != nil {
		return queries.User{}, err
	}
	if !role.Valid() {
		return queries.User{}, problem.BadInput("invalid_role", "role", "role must be one of contributor, reviewer, premium, admin.")
	}
	hash, err := s.pw.Hash(in.Password)
	if err != nil {
		return queries.User{}, err
	}
	return s.insert(ctx, in, hash, role, func(tx pgx.Tx) error {
		if role == auth.RoleAdmin {
			// There is an admin now: setup codes have done their work.
			return s.q.SetupCodeDeleteAll(ctx, tx)
		}
		return nil
	})
}

// insert stores the account under the role lock, after check (which may refuse).
func (s *Service) insert(ctx context.Context, in SignUp, hash string, role auth.Role, check func(pgx.Tx) error) (queries.User, error) {
	var u queries.User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(roleLockKey)); err != nil {
			return fmt.Errorf("error taking role lock: %w", err)
		}
		if err := check(tx); err != nil {
			return err
		}
		var err error
		u, err = s.q.UserInsertWithRole(ctx, tx, queries.UserInsertWithRoleParams{
			Email: in.Email, Name: in.Name, PasswordHash: hash, Role: role,
		})
		return err
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return queries.User{}, problem.Conflict("email_taken", "email", "An account with this email address already exists; sign in instead.")
	}
	if _, ok := problem.As(err); ok {
		return queries.User{}, err
	}
	if err != nil {
		return queries.User{}, fmt.Errorf("error creating user: %w", err)
	}
	return u, nil
}

// Register is self sign-up from client address client (see clientip.Key):
// throttled per client, and an ordinary contributor account unless a valid
// setup code comes with it while the site has no admin.
func (s *Service) Register(ctx context.Context, in SignUp, client string) (queries.User, error) {
	if err := in.validate(); err != nil {
		return queries.User{}, err
	}
	if err := s.countSignup(ctx, client); err != nil {
		return queries.User{}, err
	}
	hash, err := s.pw.Hash(in.Password)
	if err != nil {
		return queries.User{}, err
	}
	if strings.TrimSpace(in.SetupCode) == "" {
		return s.insert(ctx, in, hash, auth.RoleContributor, func(pgx.Tx) error { return nil })
	}
	return s.insert(ctx, in, hash, auth.RoleAdmin, func(tx pgx.Tx) error {
		return s.redeemSetupCode(ctx, tx, in.SetupCode)
	})
}

func (s *Service) countSignup(ctx context.Context, client string) error {
	if s.limits.SignupsPerClient <= 0 {
		return nil
	}
	r, err := s.q.SignupThrottleHit(ctx, s.pool, queries.SignupThrottleHitParams{
		Client: client, WindowSeconds: s.limits.SignupWindow.Seconds(),
	})
	if err != nil {
		return fmt.Errorf("error counting sign-ups: %w", err)
	}
	if int(r.Attempts) <= s.limits.SignupsPerClient {
		return nil
	}
	return tooMany(time.Until(r.WindowStart.Add(s.limits.SignupWindow)),
		"Too many accounts were created from your network. Wait %s and try again.")
}

// tooMany is a 429 that says how long to wait, in words and in Retry-After.
func tooMany(wait time.Duration, format string) *problem.Error {
	wait = max(wait, time.Second)
	e := problem.New(http.StatusTooManyRequests, "too_many_attempts", "", fmt.Sprintf(format, humanDuration(wait)))
	e.Headers = map[string]string{"Retry-After": strconv.Itoa(int(math.Ceil(wait.Seconds())))}
	return e
}

// Login is the sign-in form and API body.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

var errBadCredentials = problem.New(http.StatusUnauthorized, "invalid_credentials", "", "Wrong email or password.")

// Authenticate checks a sign-in from client address client (see
// clientip.Key). The attempt is counted before the password is checked, so
// that parallel guesses cannot get past the throttle; a success clears the
// count of its (account, client) pair.
func (s *Service) Authenticate(ctx context.Context, in Login, client string) (queries.User, error) {
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
	account := strings.ToLower(email)
	if err := s.admitSignIn(ctx, client, account); err != nil {
		return queries.User{}, err
	}
	u, err := s.q.UserGetByEmail(ctx, s.pool, email)
	found := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return queries.User{}, fmt.Errorf("error reading user: %w", err)
	}
	if !found {
		s.pw.WasteTime(in.Password) // as slow as a wrong password
		return queries.User{}, errBadCredentials
	}
	if !s.pw.Check(u.PasswordHash, in.Password) {
		return queries.User{}, errBadCredentials
	}
	if err := s.forgetFailure(ctx, client, account); err != nil {
		return queries.User{}, err
	}
	return u, nil
}

// admitSignIn counts one sign-in attempt for (client, account) and for
// client, or refuses it with 429 while either must still wait. The rows are
// locked for the decision, so concurrent attempts are decided one by one.
func (s *Service) admitSignIn(ctx context.Context, client, account string) error {
	accounts := []string{"", account} // the per-client row first: lock order
	// A flood from a client that is waiting anyway is answered from a plain
	// read, without a transaction or a lock.
	peek, err := s.q.LoginThrottlePeek(ctx, s.pool, queries.LoginThrottlePeekParams{Client: client, Accounts: accounts})
	if err != nil {
		return fmt.Errorf("error reading throttle rows: %w", err)
	}
	// The clock is read after the rows: a row written by a concurrent
	// attempt just before the read holds a later time than one read before
	// it, and the wait would come out longer than the delay.
	now := time.Now()
	if wait := s.mustWait(peek, now); wait > 0 {
		return tooMany(wait, throttledSignIn)
	}
	var wait time.Duration
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := s.q.LoginThrottleEnsure(ctx, tx, queries.LoginThrottleEnsureParams{Client: client, Accounts: accounts})
		if err != nil {
			return fmt.Errorf("error creating throttle rows: %w", err)
		}
		rows, err := s.q.LoginThrottleLock(ctx, tx, queries.LoginThrottleLockParams{Client: client, Accounts: accounts})
		if err != nil {
			return fmt.Errorf("error locking throttle rows: %w", err)
		}
		now = time.Now() // the lock may have taken a while
		if wait = s.mustWait(rows, now); wait > 0 {
			return nil // refused attempts are not counted: waiting is enough
		}
		for _, r := range rows {
			if now.Sub(r.LastFailureAt) > s.limits.FailureMemory {
				r.Failures = 0 // forgotten: counting starts again
			}
			failures := r.Failures + 1
			next := time.Unix(0, 0)
			if over := int(failures) - s.freeAttempts(r.Account); over >= 0 {
				next = now.Add(s.delay(over))
			}
			err := s.q.LoginThrottleSet(ctx, tx, queries.LoginThrottleSetParams{
				Client: client, Account: r.Account, Failures: failures, LastFailureAt: now, NextAllowedAt: next,
			})
			if err != nil {
				return fmt.Errorf("error counting sign-in attempt: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if wait > 0 {
		return tooMany(wait, throttledSignIn)
	}
	return nil
}

const throttledSignIn = "Too many failed sign-in attempts from your network. Wait %s and try again, or ask an admin for help."

// mustWait is how long an attempt with these throttle rows must still wait.
func (s *Service) mustWait(rows []queries.LoginThrottle, now time.Time) time.Duration {
	var wait time.Duration
	for _, r := range rows {
		if now.Sub(r.LastFailureAt) > s.limits.FailureMemory {
			continue // forgotten
		}
		if int(r.Failures) >= s.freeAttempts(r.Account) && now.Before(r.NextAllowedAt) {
			wait = max(wait, r.NextAllowedAt.Sub(now))
		}
	}
	return wait
}

func (s *Service) freeAttempts(account string) int {
	if account == "" {
		return max(s.limits.FreeAttemptsPerClient, 1)
	}
	return max(s.limits.FreeAttempts, 1)
}

// delay is the wait after the free attempts and over more failures.
func (s *Service) delay(over int) time.Duration {
	d := max(s.limits.FirstDelay, time.Second)
	for range over {
		if d >= s.limits.MaxDelay {
			break
		}
		d *= 2
	}
	return min(d, max(s.limits.MaxDelay, time.Second))
}

// forgetFailure undoes the count of a successful attempt: the pair starts
// again, and the client gets its attempt back.
func (s *Service) forgetFailure(ctx context.Context, client, account string) error {
	if err := s.q.LoginThrottleClear(ctx, s.pool, queries.LoginThrottleClearParams{Client: client, Account: account}); err != nil {
		return fmt.Errorf("error clearing sign-in failures: %w", err)
	}
	if err := s.q.LoginThrottleRefund(ctx, s.pool, client); err != nil {
		return fmt.Errorf("error clearing sign-in failures: %w", err)
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

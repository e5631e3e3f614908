// Package sso is sign-in through an OpenID Connect provider ("Sign in with
// …"): the authorization code flow with PKCE (S256), a state and a nonce per
// attempt, the ID token's checks, accounts matched by verified email, and
// roles from a claim.
//
// An attempt is stored server-side (table oidc_logins, single use, ten
// minutes) under the SHA-256 of its state; the browser holds the state in a
// short-lived cookie, and the callback must bring the same state in its query
// and its cookie, so a callback started in another browser is refused.
//
// Roles: at each sign-in the role claim's values are mapped (OIDC_ROLE_MAP)
// and the highest mapped role is the one the provider grants (contributor when
// none maps). A lower current role is raised to it. A higher current role is
// lowered only when it is the role the provider granted last time, so a group
// taken away at the provider takes the role away here, while a role an admin
// gave by hand is never lowered by the provider; nor is the last admin.
package sso

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/oauth2"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// AttemptTTL is how long a started sign-in may take at the provider.
const AttemptTTL = 10 * time.Minute

// retryAfter is how long a failed discovery is remembered before the next
// request tries again, so a provider that is down is not asked on every click.
const retryAfter = 5 * time.Second

// Settings configure the Service; they come from OIDC_* in config.
type Settings struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is BASE_URL/auth/oidc/callback, registered at the provider.
	RedirectURL string
	// Name is the provider's name shown to people ("Sign in with Name").
	Name   string
	Scopes []string
	// RoleClaim names the claim whose values RoleMap turns into roles; empty
	// means the provider decides no roles.
	RoleClaim string
	RoleMap   map[string]auth.Role
	// HTTPClient talks to the provider; nil means one with a 10 s timeout.
	HTTPClient *http.Client
}

// Service runs OpenID Connect sign-ins.
type Service struct {
	set      Settings
	pool     *pgxpool.Pool
	q        *queries.Queries
	accounts *account.Service
	logger   *slog.Logger
	client   *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
	lastErr  error
	lastTry  time.Time
}

// New returns a Service. It does not reach the provider: Discover or the
// first sign-in does.
func New(set Settings, pool *pgxpool.Pool, accounts *account.Service, logger *slog.Logger) *Service {
	client := set.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if len(set.Scopes) == 0 {
		set.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	return &Service{set: set, pool: pool, q: queries.New(), accounts: accounts, logger: logger, client: client}
}

// Name is the provider's name for the sign-in button.
func (s *Service) Name() string { return s.set.Name }

// Discover reads the provider's discovery document, logging the outcome. A
// provider that is down does not stop the server: the first sign-in tries
// again.
func (s *Service) Discover(ctx context.Context) {
	if _, err := s.discover(ctx); err != nil {
		s.logger.WarnContext(ctx, "OpenID Connect provider not reachable; sign-in will try again on first use", "issuer", s.set.Issuer, "error", err)
		return
	}
	s.logger.InfoContext(ctx, "OpenID Connect provider discovered", "issuer", s.set.Issuer)
}

func (s *Service) discover(ctx context.Context) (*oidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	if s.lastErr != nil && time.Since(s.lastTry) < retryAfter {
		return nil, s.lastErr
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// The provider keeps the client from this context (not its deadline)
	// for fetching signing keys later.
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, s.client), s.set.Issuer)
	s.lastTry = time.Now()
	if err != nil {
		s.lastErr = fmt.Errorf("error discovering OpenID Connect provider %s: %w", s.set.Issuer, err)
		return nil, s.lastErr
	}
	s.provider, s.lastErr = p, nil
	return p, nil
}

func (s *Service) unreachable(err error) error {
	e := problem.New(http.StatusServiceUnavailable, "provider_unreachable", "",
		fmt.Sprintf("%s cannot be reached right now. Try again in a minute, or sign in with your password.", s.set.Name))
	e.Headers = map[string]string{"Retry-After": "30"}
	return errors.Join(e, err)
}

func (s *Service) oauth(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     s.set.ClientID,
		ClientSecret: s.set.ClientSecret,
		Endpoint:     p.Endpoint(),
		RedirectURL:  s.set.RedirectURL,
		Scopes:       s.set.Scopes,
	}
}

// Attempt is a started sign-in: send the browser to URL with State in a
// cookie that expires at Expires.
type Attempt struct {
	State   string
	URL     string
	Expires time.Time
}

// Begin starts a sign-in that returns to next (a same-origin path the caller
// has checked).
func (s *Service) Begin(ctx context.Context, next string) (Attempt, error) {
	p, err := s.discover(ctx)
	if err != nil {
		return Attempt{}, s.unreachable(err)
	}
	state, nonce, verifier := randomString(), randomString(), oauth2.GenerateVerifier()
	expires := time.Now().Add(AttemptTTL)
	if _, err := s.q.OIDCLoginDeleteExpired(ctx, s.pool); err != nil {
		return Attempt{}, fmt.Errorf("error deleting expired sign-in attempts: %w", err)
	}
	err = s.q.OIDCLoginInsert(ctx, s.pool, queries.OIDCLoginInsertParams{
		StateHash: auth.HashSecret(state), Nonce: nonce, CodeVerifier: verifier, Next: next, ExpiresAt: expires,
	})
	if err != nil {
		return Attempt{}, fmt.Errorf("error storing sign-in attempt: %w", err)
	}
	url := s.oauth(p).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	return Attempt{State: state, URL: url, Expires: expires}, nil
}

// Callback is what the provider sent the browser back with.
type Callback struct {
	State string // the query's state
	// BrowserState is the state from the browser's cookie.
	BrowserState     string
	Code             string
	Error            string
	ErrorDescription string
}

// Result is a finished sign-in.
type Result struct {
	User queries.User
	// Next is where the browser goes now, as given to Begin.
	Next string
	// Created tells that the account was made by this sign-in.
	Created bool
}

var errStale = problem.New(http.StatusBadRequest, "invalid_state", "",
	"This sign-in has expired or was started in another browser. Start again from the sign-in page.")

// Finish checks the callback, the code exchange and the ID token, and
// returns the account, made or updated.
func (s *Service) Finish(ctx context.Context, cb Callback) (Result, error) {
	if cb.State == "" || cb.BrowserState == "" || subtle.ConstantTimeCompare([]byte(cb.State), []byte(cb.BrowserState)) != 1 {
		return Result{}, errStale
	}
	login, err := s.q.OIDCLoginTake(ctx, s.pool, auth.HashSecret(cb.State))
	if errors.Is(err, pgx.ErrNoRows) {
		return Result{}, errStale
	}
	if err != nil {
		return Result{}, fmt.Errorf("error reading sign-in attempt: %w", err)
	}
	if cb.Error != "" {
		s.logger.InfoContext(ctx, "OpenID Connect sign-in refused by the provider", "error", cb.Error, "description", cb.ErrorDescription)
		return Result{}, problem.New(http.StatusUnauthorized, "provider_refused", "",
			fmt.Sprintf("%s did not sign you in (%s). Try again, or sign in with your password.", s.set.Name, errorCode(cb.Error)))
	}
	if cb.Code == "" {
		return Result{}, problem.BadInput("missing_field", "code", "The provider sent no authorization code. Start again from the sign-in page.")
	}
	p, err := s.discover(ctx)
	if err != nil {
		return Result{}, s.unreachable(err)
	}
	claims, err := s.verify(ctx, p, login, cb.Code)
	if err != nil {
		return Result{}, err
	}
	res, err := s.signIn(ctx, claims)
	if err != nil {
		return Result{}, err
	}
	res.Next = login.Next
	return res, nil
}

// verify exchanges the code (with the PKCE verifier), checks the ID token's
// signature, issuer, audience, expiry and nonce, and returns its claims with
// the userinfo endpoint's beneath them.
func (s *Service) verify(ctx context.Context, p *oidc.Provider, login queries.OidcLogin, code string) (claims, error) {
	ctx = oidc.ClientContext(ctx, s.client)
	tok, err := s.oauth(p).Exchange(ctx, code, oauth2.VerifierOption(login.CodeVerifier))
	if err != nil {
		s.logger.WarnContext(ctx, "OpenID Connect code exchange failed", "error", err)
		return nil, problem.New(http.StatusUnauthorized, "exchange_failed", "",
			fmt.Sprintf("%s did not accept this sign-in. Start again from the sign-in page.", s.set.Name))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, problem.New(http.StatusBadGateway, "no_id_token", "", fmt.Sprintf("%s sent no ID token.", s.set.Name))
	}
	idToken, err := p.Verifier(&oidc.Config{ClientID: s.set.ClientID}).Verify(ctx, raw)
	if err != nil {
		s.logger.WarnContext(ctx, "OpenID Connect ID token refused", "error", err)
		return nil, problem.New(http.StatusUnauthorized, "invalid_id_token", "",
			fmt.Sprintf("The ID token from %s could not be verified. Start again from the sign-in page.", s.set.Name))
	}
	if subtle.ConstantTimeCompare([]byte(idToken.Nonce), []byte(login.Nonce)) != 1 {
		s.logger.WarnContext(ctx, "OpenID Connect ID token with the wrong nonce", "subject", idToken.Subject)
		return nil, problem.New(http.StatusBadRequest, "nonce_mismatch", "",
			"This sign-in answer belongs to another attempt. Start again from the sign-in page.")
	}
	var c claims
	if err := idToken.Claims(&c); err != nil {
		return nil, fmt.Errorf("error reading ID token claims: %w", err)
	}
	// Many providers put email and groups only into userinfo when an access
	// token is issued; the signed ID token wins where both say something.
	if p.UserInfoEndpoint() != "" && (c["email"] == nil || s.set.RoleClaim != "" && c.lookup(s.set.RoleClaim) == nil) {
		info, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return nil, fmt.Errorf("error reading userinfo from %s: %w", s.set.Issuer, err)
		}
		if info.Subject != idToken.Subject {
			return nil, problem.New(http.StatusUnauthorized, "invalid_id_token", "", fmt.Sprintf("%s answered for another user. Start again from the sign-in page.", s.set.Name))
		}
		var extra claims
		if err := info.Claims(&extra); err != nil {
			return nil, fmt.Errorf("error reading userinfo claims: %w", err)
		}
		for k, v := range c {
			extra[k] = v
		}
		c = extra
	}
	return c, nil
}

// signIn finds the account by verified email, or makes one, and applies the
// role claim.
func (s *Service) signIn(ctx context.Context, c claims) (Result, error) {
	rawEmail, _ := c["email"].(string)
	if rawEmail == "" {
		return Result{}, problem.New(http.StatusForbidden, "no_email", "",
			fmt.Sprintf("%s did not share an email address. Allow it to (scope email), then sign in again.", s.set.Name))
	}
	if !c.verified("email_verified") {
		return Result{}, problem.New(http.StatusForbidden, "email_not_verified", "",
			fmt.Sprintf("Your email address at %s (%s) is not verified. Verify it there, then sign in again.", s.set.Name, rawEmail))
	}
	email, err := auth.NormalizeEmail(rawEmail)
	if err != nil {
		return Result{}, problem.New(http.StatusForbidden, "invalid_email", "",
			fmt.Sprintf("%s sent an email address this hub cannot use (%q).", s.set.Name, rawEmail))
	}
	granted := auth.RoleContributor
	if s.set.RoleClaim != "" {
		granted = s.mapRole(c.strings(s.set.RoleClaim))
	}
	subject, _ := c["sub"].(string)

	res := Result{}
	u, err := s.q.UserGetByEmail(ctx, s.pool, email)
	if errors.Is(err, pgx.ErrNoRows) {
		u, err = s.q.UserInsertWithRole(ctx, s.pool, queries.UserInsertWithRoleParams{
			// No password: this account signs in through the provider
			// (an empty hash matches no password).
			Email: email, Name: c.displayName(email), PasswordHash: "", Role: granted,
		})
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23505" {
			// Two first sign-ins at once: the other one made it.
			u, err = s.q.UserGetByEmail(ctx, s.pool, email)
		} else if err == nil {
			res.Created = true
			s.logger.InfoContext(ctx, "account created by OpenID Connect sign-in", "user", u.ID, "role", u.Role)
		}
	}
	if err != nil {
		return Result{}, fmt.Errorf("error finding or creating the account for %s: %w", email, err)
	}
	if !res.Created && s.set.RoleClaim != "" {
		if u, err = s.applyRole(ctx, u, granted); err != nil {
			return Result{}, err
		}
	}
	err = s.q.OIDCAccountUpsert(ctx, s.pool, queries.OIDCAccountUpsertParams{
		UserID: u.ID, Issuer: s.set.Issuer, Subject: subject, GrantedRole: granted,
	})
	if err != nil {
		return Result{}, fmt.Errorf("error recording the provider's account: %w", err)
	}
	res.User = u
	return res, nil
}

// applyRole raises u to granted, or lowers it there when its role is the one
// the provider granted last time (see the package doc).
func (s *Service) applyRole(ctx context.Context, u queries.User, granted auth.Role) (queries.User, error) {
	want := u.Role
	switch {
	case !u.Role.AtLeast(granted):
		want = granted
	case u.Role != granted:
		prev, err := s.q.OIDCAccountGet(ctx, s.pool, u.ID)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return u, fmt.Errorf("error reading the provider's account: %w", err)
		}
		if err == nil && prev.GrantedRole == u.Role {
			want = granted
		}
	}
	if want == u.Role {
		return u, nil
	}
	changed, err := s.accounts.SetRole(ctx, u.ID, want)
	if e, ok := problem.As(err); ok && e.Status == http.StatusConflict {
		// The last admin stays admin; signing in still works.
		s.logger.WarnContext(ctx, "OpenID Connect role claim would demote the last admin; kept", "user", u.ID, "role", want)
		return u, nil
	}
	if err != nil {
		return u, fmt.Errorf("error applying the provider's role: %w", err)
	}
	s.logger.InfoContext(ctx, "role set by OpenID Connect claim", "user", u.ID, "from", u.Role, "to", want)
	return changed, nil
}

// mapRole is the highest role any of values maps to, contributor if none.
func (s *Service) mapRole(values []string) auth.Role {
	best := auth.RoleContributor
	for _, v := range values {
		if r, ok := s.set.RoleMap[v]; ok && r.AtLeast(best) {
			best = r
		}
	}
	return best
}

// claims are an ID token's (and userinfo's) claims.
type claims map[string]any

// lookup follows a dotted path (realm_access.roles); a claim whose own name
// has dots is found first.
func (c claims) lookup(path string) any {
	if v, ok := c[path]; ok {
		return v
	}
	var cur any = map[string]any(c)
	for part := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
	}
	return cur
}

// strings reads a claim that is a string or an array of strings; anything
// else gives no values.
func (c claims) strings(path string) []string {
	switch v := c.lookup(path).(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// verified reads a boolean claim; some providers send "true" as a string.
func (c claims) verified(name string) bool {
	switch v := c[name].(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}

// displayName is the new account's name: the name claim, or given and
// family name, or the preferred username, or the email's local part; cleaned
// and cut to the 100 characters the accounts table allows.
func (c claims) displayName(email string) string {
	str := func(k string) string { v, _ := c[k].(string); return v }
	for _, n := range []string{
		str("name"),
		strings.TrimSpace(str("given_name") + " " + str("family_name")),
		str("preferred_username"),
		email[:strings.IndexByte(email, '@')],
	} {
		n = strings.Join(strings.FieldsFunc(n, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError }), " ")
		if n == "" {
			continue
		}
		if r := []rune(n); len(r) > 100 {
			n = strings.TrimSpace(string(r[:100]))
		}
		return n
	}
	return "user"
}

// errorCode keeps an OAuth error code printable: it is shown to the person,
// and it came through the URL.
func errorCode(code string) string {
	code = strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, code)
	if len(code) > 40 {
		code = code[:40]
	}
	return cmp.Or(code, "unknown error")
}

func randomString() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b)
}

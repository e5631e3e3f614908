// Package auth holds what sign-in needs that is neither HTTP nor SQL: roles and
// their order, password hashing, and the random secrets behind sessions and API
// tokens.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// Role is a user's role. Each role includes the ones before it:
// contributor < reviewer < premium < admin.
type Role string

// The roles, in order.
const (
	RoleContributor Role = "contributor"
	RoleReviewer    Role = "reviewer"
	RolePremium     Role = "premium"
	RoleAdmin       Role = "admin"
)

// RoleTrainer is the role of a trainer token (docs/training.md): it stands
// outside the order above, includes no other role and is included by none,
// so such a token reaches only the routes that ask for it by name.
const RoleTrainer Role = "trainer"

// Roles lists every role from lowest to highest.
var Roles = []Role{RoleContributor, RoleReviewer, RolePremium, RoleAdmin}

func (r Role) rank() int {
	for i, x := range Roles {
		if x == r {
			return i
		}
	}
	return -1
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return r.rank() >= 0 }

// AtLeast reports whether r includes min.
func (r Role) AtLeast(min Role) bool {
	if r == RoleTrainer || min == RoleTrainer {
		return r == min
	}
	return r.Valid() && r.rank() >= min.rank()
}

// Password limits. bcrypt reads at most 72 bytes, so longer passwords are
// refused rather than silently truncated.
const (
	MinPasswordLen = 10
	MaxPasswordLen = 72
)

// ErrWeakPassword and ErrLongPassword describe passwords that are refused.
var (
	ErrWeakPassword = fmt.Errorf("password must be at least %d characters", MinPasswordLen)
	ErrLongPassword = fmt.Errorf("password must be at most %d bytes", MaxPasswordLen)
)

// CheckPasswordRules returns why a new password is refused, or nil.
func CheckPasswordRules(pw string) error {
	switch {
	case len([]rune(pw)) < MinPasswordLen:
		return ErrWeakPassword
	case len(pw) > MaxPasswordLen:
		return ErrLongPassword
	}
	return nil
}

// DefaultPasswordCost is the bcrypt cost of new password hashes unless
// configured (PASSWORD_HASH_COST): bcrypt's own default.
const DefaultPasswordCost = bcrypt.DefaultCost

// Password hash costs that may be configured: bcrypt's range.
const (
	MinPasswordCost = bcrypt.MinCost
	MaxPasswordCost = bcrypt.MaxCost
)

// Passwords hashes and checks passwords with bcrypt at one cost. The cost
// is a setting because it dominates the CPU time of tests that sign many
// users in (a cost-10 hash takes ~1 s under the race detector); a server
// keeps the default.
type Passwords struct {
	cost  int
	dummy func() []byte
}

// NewPasswords returns a Passwords hashing at cost; 0 means
// DefaultPasswordCost.
func NewPasswords(cost int) *Passwords {
	if cost == 0 {
		cost = DefaultPasswordCost
	}
	return &Passwords{cost: cost, dummy: sync.OnceValue(func() []byte {
		// Compared against when an email is unknown, so that a sign-in for
		// a missing account costs as much as one with a wrong password.
		h, _ := bcrypt.GenerateFromPassword([]byte("not-a-real-password"), cost)
		return h
	})}
}

// Hash hashes a password.
func (p *Passwords) Hash(pw string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(pw), p.cost)
	if err != nil {
		return "", fmt.Errorf("error hashing password: %w", err)
	}
	return string(h), nil
}

// Check reports whether pw matches hash. It takes as long for a wrong
// password as for a right one.
func (p *Passwords) Check(hash, pw string) bool {
	return bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)) == nil
}

// WasteTime spends a password comparison's worth of time.
func (p *Passwords) WasteTime(pw string) { _ = bcrypt.CompareHashAndPassword(p.dummy(), []byte(pw)) }

// TokenPrefix marks API tokens so that secret scanners and people recognise them.
const TokenPrefix = "ihub_"

// NewSecret returns a fresh 256-bit random secret, as text for the client and
// as the SHA-256 that is stored.
func NewSecret(prefix string) (plain string, hash []byte) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	plain = prefix + base64.RawURLEncoding.EncodeToString(b)
	return plain, HashSecret(plain)
}

// HashSecret is how secrets are stored and looked up.
func HashSecret(plain string) []byte {
	h := sha256.Sum256([]byte(plain))
	return h[:]
}

// ErrBadEmail is returned by NormalizeEmail.
var ErrBadEmail = errors.New("enter an email address like name@example.com")

// NormalizeEmail trims an email address and checks its shape. Whether it
// exists is the mail server's business; we only refuse what cannot be one.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	at := strings.LastIndexByte(s, '@')
	if len(s) > 254 || at < 1 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n<>,;\"") ||
		!strings.Contains(s[at+1:], ".") || strings.Count(s, "@") != 1 {
		return "", ErrBadEmail
	}
	return s, nil
}

package app

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

const (
	defaultLimit = 50
	maxLimit     = 500
)

// cursor is the position after the last row of a page in (created_at, id)
// order, or in (K, id) order for lists sorted by name (K the sort key), or
// in the campaigns' order.
// Clients see it as an opaque string.
type cursor struct {
	T  time.Time `json:"t"`
	ID uuid.UUID `json:"id"`
	K  string    `json:"k,omitempty"`
	// Campaigns sort on more: priority, whether closed, closes_at.
	P      int32     `json:"p,omitempty"`
	Closed bool      `json:"c,omitempty"`
	U      time.Time `json:"u,omitzero"`
}

func (k cursor) String() string {
	b, _ := json.Marshal(k)
	return base64.RawURLEncoding.EncodeToString(b)
}

// pageParams reads ?limit= and ?cursor=.
func pageParams(c *fiber.Ctx) (limit int, after *cursor, err error) {
	limit = defaultLimit
	if v := c.Query("limit"); v != "" {
		n, convErr := strconv.Atoi(v)
		if convErr != nil || n < 1 || n > maxLimit {
			return 0, nil, badInput("invalid_limit", "limit", "limit must be a whole number from 1 to 500.")
		}
		limit = n
	}
	if v := c.Query("cursor"); v != "" {
		b, decErr := base64.RawURLEncoding.DecodeString(v)
		var k cursor
		if decErr != nil || json.Unmarshal(b, &k) != nil || k.ID == uuid.Nil {
			return 0, nil, badInput("invalid_cursor", "cursor", "cursor is not one this server gave out; start again without it.")
		}
		after = &k
	}
	return limit, after, nil
}

package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deepimageshub/imagehub/intake"
	"github.com/deepimageshub/imagehub/problem"
)

// Shorthands for the refusals handlers return most.
var (
	badInput           = problem.BadInput
	errUnauthenticated = problem.Unauthenticated
	errForbidden       = problem.Forbidden
	errNotFound        = problem.NotFound
)

// rowErr is the error of reading the object a route names: no such row is
// the 404 every object answers (never a hint that it exists); anything else
// is wrapped with what was being read.
func rowErr(err error, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return errNotFound
	}
	return fmt.Errorf("error reading %s: %w", what, err)
}

// retryAfterSeconds is how long a client is asked to wait when the database
// or the blob store is not answering: long enough for a restart.
const retryAfterSeconds = 10

// asError turns any error into the problem to show. A database or blob-store
// outage is 503 with Retry-After, so that clients try again rather than give
// up; anything else that is not already a *problem.Error is an internal
// failure: the person sees a generic message and the log gets the details.
// known is false for both, so that they are logged.
func asError(err error) (e *problem.Error, known bool) {
	if e, ok := problem.As(err); ok {
		if e.Status == http.StatusServiceUnavailable && e.Headers["Retry-After"] == "" {
			e = withRetryAfter(e)
		}
		return e, true
	}
	if outage(err) {
		return withRetryAfter(problem.New(http.StatusServiceUnavailable, "unavailable", "",
			"The hub cannot reach its database or image store just now. Nothing was lost; please try again in a few seconds.")), false
	}
	return problem.New(http.StatusInternalServerError, "internal", "",
		"Something went wrong on our side; it has been logged. Please try again."), false
}

// withRetryAfter is a copy of e that asks the client to come back later (a
// copy, because problems may be shared values).
func withRetryAfter(e *problem.Error) *problem.Error {
	c := *e
	c.Headers = map[string]string{"Retry-After": strconv.Itoa(retryAfterSeconds)}
	for k, v := range e.Headers {
		c.Headers[k] = v
	}
	return &c
}

// outage reports whether err means a store the hub depends on is not
// answering (down, restarting, unreachable or too slow), rather than a bug
// or bad input: a failed connection to PostgreSQL, a connection it ended,
// a network error, a wait for a pooled connection that ran out of time, or
// an S3 server error.
func outage(err error) bool {
	if errors.Is(err, intake.ErrStorageUnavailable) {
		return true
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08 is a connection exception; 57P01-57P03 an administrator
		// or crash shutdown, or a server still starting; 53300 too many
		// connections.
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	if pgconn.Timeout(err) || pgconn.SafeToRetry(err) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	// S3 (aws-sdk-go-v2's response errors) answering with a server error.
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() >= 500 {
		return true
	}
	// A connection the server closed mid-answer (pg_terminate_backend, a
	// restart) surfaces from pgconn as an unexpected EOF.
	return errors.Is(err, io.ErrUnexpectedEOF)
}

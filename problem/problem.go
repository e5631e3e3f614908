// Package problem is the error a person sees: an HTTP status, a stable machine
// code, a message and, for bad input, the field at fault. Domain packages
// return it; the web app renders it as API.md's error body or as a page, and
// the command line prints its message.
package problem

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a refusal meant for a person.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
	// Headers are added to an HTTP response (Retry-After, WWW-Authenticate).
	Headers map[string]string
	// Details lists the findings behind the message, one per line, when
	// there are several (every way a model breaks the convention).
	Details []string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (%s): %s", e.Code, e.Field, e.Message)
	}
	return e.Code + ": " + e.Message
}

// New makes an Error.
func New(status int, code, field, message string) *Error {
	return &Error{Status: status, Code: code, Field: field, Message: message}
}

// BadInput is a 400 naming the field at fault.
func BadInput(code, field, message string) *Error {
	return New(http.StatusBadRequest, code, field, message)
}

// Conflict is a 409.
func Conflict(code, field, message string) *Error {
	return New(http.StatusConflict, code, field, message)
}

// Unauthenticated is a 401.
func Unauthenticated(message string) *Error {
	e := New(http.StatusUnauthorized, "unauthenticated", "", message)
	e.Headers = map[string]string{"WWW-Authenticate": `Bearer realm="imagehub"`}
	return e
}

// Forbidden and NotFound are the usual refusals. NotFound is also the answer
// for an object the caller may not see, so that existence never leaks.
var (
	Forbidden = New(http.StatusForbidden, "forbidden", "", "Your role does not allow this.")
	NotFound  = New(http.StatusNotFound, "not_found", "", "There is nothing here.")
)

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

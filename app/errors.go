package app

import (
	"net/http"

	"github.com/deepimageshub/imagehub/problem"
)

// Shorthands for the refusals handlers return most.
var (
	badInput           = problem.BadInput
	errUnauthenticated = problem.Unauthenticated
	errForbidden       = problem.Forbidden
	errNotFound        = problem.NotFound
)

// asError turns any error into the problem to show. Anything that is not
// already a *problem.Error is an internal failure: the person sees a generic
// message and the log gets the details.
func asError(err error) (*problem.Error, bool) {
	if e, ok := problem.As(err); ok {
		return e, true
	}
	return problem.New(http.StatusInternalServerError, "internal", "",
		"Something went wrong on our side; it has been logged. Please try again."), false
}

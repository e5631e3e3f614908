// Package views holds the HTML of every page as templ components. Handlers
// pass small view models; nothing here touches the database.
package views

import (
	"time"

	"github.com/deepimageshub/imagehub/auth"
)

// Viewer is the signed-in person a page is rendered for.
type Viewer struct {
	ID    string
	Name  string
	Email string
	Role  auth.Role
}

// Can reports whether the viewer holds at least role min.
func (v *Viewer) Can(min auth.Role) bool { return v != nil && v.Role.AtLeast(min) }

// Page is what the layout needs on every page.
type Page struct {
	Title  string
	Path   string // the request path, to mark the current navigation entry
	Viewer *Viewer
	CSRF   string // token for forms and htmx requests
	Flash  *Flash
}

// Flash is a one-line message at the top of a page.
type Flash struct {
	Kind string // "ok" or "error"
	Text string
}

// FormError is a refusal shown beside a form, naming the field when there is one.
type FormError struct {
	Field   string
	Message string
}

func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

func formatOptTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return formatTime(*t)
}

// Package views holds the HTML of every page as templ components. Handlers
// pass small view models; nothing here touches the database.
package views

import (
	"time"

	"github.com/a-h/templ"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/static"
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
	// Notices are for admins on every page, each with a link to act on it
	// (a webhook endpoint disabled for failing).
	Notices []Notice
}

// Notice is a standing warning with where to fix it.
type Notice struct {
	Text string
	Href string
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

func joinLabels(labels []string) string {
	out := ""
	for i, l := range labels {
		if i > 0 {
			out += ", "
		}
		out += l
	}
	return out
}

// statusText is an image status in words for a contributor.
func statusText(status string) string {
	switch status {
	case "uploaded", "processing":
		return "checking"
	case "awaiting_inference":
		return "waiting for the model"
	case "awaiting_review":
		return "waiting for review"
	case "reviewed":
		return "reviewed"
	case "flagged":
		return "needs a second look"
	case "rejected":
		return "not accepted"
	case "failed":
		return "failed"
	}
	return status
}

func staticPath(name string) string { return static.Path(name) }

// importMap is the review screen's inline import map. The page CSP allows
// exactly this text by its hash (static.ImportMapSource).
func importMap() templ.Component {
	return templ.Raw(`<script type="importmap">` + static.ImportMap() + `</script>`)
}

func modulePaths() []string { return static.ModulePaths() }

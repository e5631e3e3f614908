package app

import (
	"bytes"
	"fmt"
	"html/template"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/openapi"
	"github.com/deepimageshub/imagehub/static"
)

// apiOpenAPI: GET /api/v1/openapi.json, the OpenAPI 3.1 description of
// every /api/v1 route (package openapi).
func (s *Server) apiOpenAPI(c *fiber.Ctx) error {
	b, err := openapi.JSON()
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	// It changes with each release; let clients revalidate.
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderAccessControlAllowOrigin, "*")
	return c.Send(b)
}

// docsPage is /api/docs: Swagger UI (static/apidocs/) reading
// /api/v1/openapi.json. No inline script: api-docs.js starts it.
var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>API · Deep Images Hub</title>
<link rel="stylesheet" href="{{.CSS}}">
</head>
<body data-spec="/api/v1/openapi.json">
<div id="swagger-ui"></div>
<script src="{{.Bundle}}"></script>
<script type="module" src="{{.Init}}"></script>
</body>
</html>
`))

// apiDocsPage: GET /api/docs, the description rendered by Swagger UI.
func (s *Server) apiDocsPage(c *fiber.Ctx) error {
	var b bytes.Buffer
	err := docsPage.Execute(&b, map[string]string{
		"CSS":    static.Path("apidocs/swagger-ui.css"),
		"Bundle": static.Path("apidocs/swagger-ui-bundle.js"),
		"Init":   static.Path("api-docs.js"),
	})
	if err != nil {
		return fmt.Errorf("error rendering the API docs page: %w", err)
	}
	c.Set(fiber.HeaderContentSecurityPolicy, s.security.docsCSP)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	return c.Send(b.Bytes())
}

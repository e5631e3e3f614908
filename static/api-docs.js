// The API docs page (/api/docs): Swagger UI on the hub's own description.
// A module, so it runs after the classic bundle script that defines
// SwaggerUIBundle.
const ui = window.SwaggerUIBundle({
  url: document.body.dataset.spec,
  dom_id: "#swagger-ui",
  deepLinking: true,
  // Same-origin calls carry the session cookie; "Authorize" takes a token.
  withCredentials: true,
});
window.ui = ui;

// Calls to the review API (../shared/API.md) with the page's session and
// CSRF token.

const csrfMeta = document.querySelector('meta[name="csrf-token"]');
export const csrf = csrfMeta ? csrfMeta.content : "";

// api sends a JSON request and resolves to {status, body}; body is the
// parsed answer, or null. It rejects only when no answer came (or when
// signal aborted it).
export function api(method, path, body, signal) {
  const init = { method, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRF-Token": csrf } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  if (signal) init.signal = signal;
  return fetch(path, init).then((res) => res.text().then((text) => {
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON: status says enough */ }
    return { status: res.status, body: json };
  }));
}

export function errorText(res) {
  if (res && res.body && res.body.error && res.body.error.message) return res.body.error.message;
  return res ? "The server answered " + res.status + "." : "The connection dropped.";
}

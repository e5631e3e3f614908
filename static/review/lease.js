// Leases: renewed every minute while the page is open, given back when it
// is left.

import { api, csrf, errorText } from "review/api.js";
import { describe, say } from "review/messages.js";
import { advance, fill, queue } from "review/queue.js";
import { state } from "review/state.js";

const RENEW_MS = 60000; // lease renewal while the page is open

export function held() {
  const out = [];
  if (state.current && state.current.state === "open") out.push(state.current);
  queue.ahead.forEach(function (it) { out.push(it); });
  queue.saving.forEach(function (s) { out.push(s.item); });
  return out;
}

export function renewAll() {
  queue.lastRenew = Date.now();
  held().forEach(function (item) {
    api("POST", "/api/v1/review/" + encodeURIComponent(item.id) + "/renew").then(function (res) {
      if (res.status === 200 && res.body && res.body.lease_expires_at) {
        item.lease = res.body.lease_expires_at;
        if (item === state.current && item.prepared) describe(item);
      } else if (res.status === 409) {
        leaseLost(item, res);
      }
    }, function () { /* tried again in a minute */ });
  });
}

export function leaseLost(item, res) {
  if (item.state !== "open") return; // a submission in flight answers for itself
  item.state = "lost";
  const i = queue.ahead.indexOf(item);
  if (i >= 0) {
    queue.ahead.splice(i, 1);
    fill();
    return;
  }
  if (item === state.current) {
    say("Your lease on this image has expired and another reviewer may have it now, so your edits here cannot be saved. " + errorText(res),
      "error", { text: "Go to the next image", run: advance });
  }
}

// wireLeases renews the leases every minute and when the page is shown
// again, and gives them back when it is left.
export function wireLeases() {
  setInterval(renewAll, RENEW_MS);
  document.addEventListener("visibilitychange", function () {
    if (!state.current) return;
    if (document.hidden) {
      state.current.spent += performance.now() - state.current.shownAt;
    } else {
      state.current.shownAt = performance.now();
      if (Date.now() - queue.lastRenew > RENEW_MS / 2) renewAll();
    }
  });
  // Leaving the page gives back the items leased ahead (and the one on
  // screen unless its edits are kept for the warning below), so other
  // reviewers get them now rather than when the leases run out.
  window.addEventListener("pagehide", function () {
    const give = queue.ahead.slice();
    if (state.current && state.current.state === "open" && !state.current.undo.length) give.push(state.current);
    give.forEach(function (item) {
      fetch("/api/v1/review/" + encodeURIComponent(item.id) + "/release", {
        method: "POST", credentials: "same-origin", keepalive: true, headers: { "X-CSRF-Token": csrf }
      }).catch(function () { /* the lease runs out on its own */ });
    });
  });
  window.addEventListener("beforeunload", function (e) {
    if (queue.saving.length || (state.current && state.current.undo.length)) {
      e.preventDefault();
      e.returnValue = "";
    }
  });
}

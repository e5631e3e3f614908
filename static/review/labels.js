// The taxonomy, for the label picker and the names shown.

import { $ } from "review/state.js";
import { api } from "review/api.js";

export const labels = [];
const labelByName = new Map();

export function loadLabels() {
  // The page's filter lists the taxonomy already; the API has it fresh.
  for (const o of $("review-label").options) {
    if (o.value) addLabel({ name: o.value, display_name: o.textContent });
  }
  // The API pages the taxonomy (an Open Images one is 20,000 labels):
  // follow the cursors, and replace the page's list only once all is in.
  const fresh = [];
  const page = (cursor) => {
    const q = "?limit=500" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "");
    return api("GET", "/api/v1/labels" + q).then((res) => {
      if (res.status !== 200 || !res.body || !res.body.items) return;
      fresh.push(...res.body.items);
      if (res.body.next_cursor) return page(res.body.next_cursor);
      labels.length = 0;
      labelByName.clear();
      fresh.forEach(addLabel);
    });
  };
  page("").catch(() => { /* the page's list will do */ });
}

function addLabel(l) {
  if (labelByName.has(l.name)) return;
  const entry = { name: l.name, display: l.display_name || l.name };
  entry.search = (entry.name + " " + entry.display).toLowerCase();
  labels.push(entry);
  labelByName.set(l.name, entry);
}

export function displayName(name) { return labelByName.has(name) ? labelByName.get(name).display : name; }

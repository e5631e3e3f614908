// What the page says: the message box, the stage's overlay, the item's
// description.

import { displayName } from "review/labels.js";
import { itemInfo, messageBox, overlay } from "review/state.js";

export function say(text, kind, action) {
  messageBox.textContent = "";
  messageBox.className = "review-message" + (kind ? " " + kind : "");
  if (!text) return;
  const p = document.createElement("p");
  p.textContent = text;
  messageBox.appendChild(p);
  if (action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = action.text;
    b.addEventListener("click", function () { b.blur(); action.run(); });
    messageBox.appendChild(b);
  }
}

export function waiting(text) {
  overlay.textContent = text || "";
  overlay.hidden = !text;
}

export function describe(item) {
  itemInfo.textContent = "";
  const h = document.createElement("p");
  const kind = document.createElement("span");
  kind.className = "badge " + item.kind;
  kind.textContent = item.kind === "second" ? "second review (blind)" : "first review";
  h.appendChild(kind);
  h.appendChild(document.createTextNode(" " + item.W + " × " + item.H + " px · " + item.instances.length + " proposals"));
  itemInfo.appendChild(h);
  const p = document.createElement("p");
  p.className = "hint";
  const lease = item.lease ? new Date(item.lease) : null;
  p.textContent = (item.image.labels && item.image.labels.length ? "Photo labels: " + item.image.labels.map(displayName).join(", ") + ". " : "") +
    (lease ? "Leased to you until " + lease.toLocaleTimeString() + " (renewed while this page is open)." : "");
  itemInfo.appendChild(p);
  if (item.kind === "second") {
    const s = document.createElement("p");
    s.className = "hint";
    s.textContent = "The first reviewer's masks are hidden: add (N) and draw every instance you see.";
    itemInfo.appendChild(s);
  }
  if (item.skipped) {
    const w = document.createElement("p");
    w.className = "error";
    w.textContent = item.skipped + " proposals had masks this page cannot read; they are left out.";
    itemInfo.appendChild(w);
  }
}

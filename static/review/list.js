// The instance list beside the image.

import { relabel, select, setHover, setVerdict, toggleHidden } from "review/instances.js";
import { displayName } from "review/labels.js";
import { state, list } from "review/state.js";

export function buildList(item) {
  list.textContent = "";
  const frag = document.createDocumentFragment();
  item.instances.forEach(function (inst) { frag.appendChild(makeRow(item, inst)); });
  list.appendChild(frag);
}

export function makeRow(item, inst) {
  const li = document.createElement("li");
  li.className = "review-row";
  li.dataset.key = inst.key;
  const sw = document.createElement("span");
  sw.className = "swatch";
  sw.style.background = inst.color.css;
  const name = document.createElement("button");
  name.type = "button";
  name.className = "link name";
  name.dataset.act = "relabel";
  name.title = "Relabel (L)";
  const score = document.createElement("span");
  score.className = "score";
  const status = document.createElement("span");
  status.className = "badge";
  const hide = document.createElement("button");
  hide.type = "button";
  hide.className = "act hide";
  hide.dataset.act = "hide";
  hide.title = "Hide / show this instance (Shift+H)";
  const accept = document.createElement("button");
  accept.type = "button";
  accept.className = "act accept";
  accept.dataset.act = "accept";
  accept.textContent = "✓";
  accept.title = "Accept (A)";
  const reject = document.createElement("button");
  reject.type = "button";
  reject.className = "act reject";
  reject.dataset.act = "reject";
  reject.textContent = "✕";
  reject.title = "Reject (X)";
  [sw, name, score, status, hide, accept, reject].forEach(function (n) { li.appendChild(n); });
  inst.row = { li, name, score, status, hide, accept, reject };
  updateRow(item, inst);
  return li;
}

export function updateRow(item, inst) {
  const row = inst.row;
  if (!row) return;
  row.li.classList.toggle("selected", item.active === inst);
  row.li.classList.toggle("rejected", inst.status === "rejected");
  row.li.classList.toggle("hidden-mask", inst.hidden);
  row.hide.textContent = inst.hidden ? "Show" : "Hide";
  row.hide.setAttribute("aria-pressed", String(inst.hidden));
  row.name.textContent = displayName(inst.label);
  row.score.textContent = inst.score === null ? "new" : inst.score.toFixed(2);
  let text = inst.status === "pending" ? "pending" : inst.status;
  if (inst.edited && inst.status !== "rejected") text += ", edited";
  row.status.textContent = text;
  row.status.className = "badge " + inst.status;
  row.status.title = inst.status === "pending" ? "Counts as accepted when you submit" : "";
  row.accept.setAttribute("aria-pressed", String(inst.status === "accepted"));
  row.reject.setAttribute("aria-pressed", String(inst.status === "rejected"));
  row.accept.hidden = inst.status === "new";
  row.li.dataset.status = inst.status;
}

export function instanceOfRow(node) {
  const li = node && node.closest && node.closest("li.review-row");
  if (!li || !state.current) return null;
  const key = Number(li.dataset.key);
  for (let i = 0; i < state.current.instances.length; i++) if (state.current.instances[i].key === key) return state.current.instances[i];
  return null;
}

// wireList handles clicks and hovering on the rows.
export function wireList() {
  list.addEventListener("click", function (e) {
    const inst = instanceOfRow(e.target), item = state.current;
    if (!inst) return;
    const act = e.target.closest("button") && e.target.closest("button").dataset.act;
    if (act === "accept") setVerdict(item, inst, "accepted");
    else if (act === "reject") setVerdict(item, inst, "rejected");
    else if (act === "hide") toggleHidden(item, inst);
    else if (act === "relabel") { select(item, inst); relabel(item, inst); }
    else select(item, inst);
    if (e.target.closest("button")) e.target.closest("button").blur();
  });
  list.addEventListener("mouseover", function (e) {
    const inst = instanceOfRow(e.target);
    if (inst && state.current) setHover(state.current, inst);
  });
  list.addEventListener("mouseleave", function () { if (state.current) setHover(state.current, null); });
}

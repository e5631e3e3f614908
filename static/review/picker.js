// The label picker: type to search, arrows and Enter to choose.

import { labels } from "review/labels.js";
import { state, picker, pickerInput, pickerList } from "review/state.js";

// openPicker shows the label picker. The key that opened it may still
// type its character into the search box once it has focus (a keydown's
// default is its character); guard drops that one.
export function openPicker(title, onPick) {
  state.pick = { onPick: onPick, index: 0, shown: [], guard: true };
  picker.hidden = false;
  pickerInput.value = "";
  pickerInput.placeholder = title + ": type to search";
  pickerInput.setAttribute("aria-label", title);
  filterPicker();
  pickerInput.focus();
}

export function closePicker() {
  picker.hidden = true;
  state.pick = null;
  pickerInput.blur();
}

// filterPicker shows the labels that match what was typed: names that
// start with it first, then words that start with it, then the rest
// that contain it; the photo's own labels lead.
export function filterPicker() {
  const q = pickerInput.value.trim().toLowerCase();
  const own = {};
  ((state.current && state.current.image.labels) || []).forEach(function (n) { own[n] = true; });
  const scored = [];
  labels.forEach(function (l) {
    const at = q ? l.search.indexOf(q) : 0;
    if (at < 0) return;
    let rank = at === 0 ? 0 : (l.search.charAt(at - 1) === " " ? 1 : 2);
    if (l.display.toLowerCase().indexOf(q) === 0) rank = 0;
    scored.push({ l: l, rank: rank - (own[l.name] ? 0.5 : 0) });
  });
  scored.sort(function (a, b) { return a.rank - b.rank || a.l.display.localeCompare(b.l.display); });
  state.pick.shown = scored.slice(0, 50).map(function (s) { return s.l; });
  state.pick.index = 0;
  pickerList.textContent = "";
  state.pick.shown.forEach(function (l, i) {
    const li = document.createElement("li");
    li.setAttribute("role", "option");
    li.dataset.name = l.name;
    li.textContent = l.display + (l.display !== l.name ? " (" + l.name + ")" : "");
    if (own[l.name]) li.className = "own";
    li.setAttribute("aria-selected", String(i === 0));
    pickerList.appendChild(li);
  });
  if (!state.pick.shown.length) {
    const none = document.createElement("li");
    none.className = "none";
    none.textContent = "No label matches. An admin adds labels on the Labels page.";
    pickerList.appendChild(none);
  }
}

export function movePick(d) {
  if (!state.pick.shown.length) return;
  state.pick.index = (state.pick.index + d + state.pick.shown.length) % state.pick.shown.length;
  Array.prototype.forEach.call(pickerList.children, function (li, i) { li.setAttribute("aria-selected", String(i === state.pick.index)); });
  pickerList.children[state.pick.index].scrollIntoView({ block: "nearest" });
}

export function choose(name) {
  const p = state.pick;
  closePicker();
  if (p && name) p.onPick(name);
}

// wirePicker handles typing and choosing in the picker.
export function wirePicker() {
  pickerInput.addEventListener("input", function () { if (state.pick) filterPicker(); });
  pickerInput.addEventListener("beforeinput", function (e) { if (state.pick && state.pick.guard) e.preventDefault(); });
  pickerInput.addEventListener("keydown", function (e) {
    if (!state.pick) return;
    state.pick.guard = false;
    if (e.key === "ArrowDown") { e.preventDefault(); movePick(1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); movePick(-1); }
    else if (e.key === "Enter") { e.preventDefault(); const l = state.pick.shown[state.pick.index]; choose(l && l.name); }
    else if (e.key === "Escape" || e.key === "Tab") { e.preventDefault(); closePicker(); }
    e.stopPropagation();
  });
  pickerList.addEventListener("mousedown", function (e) {
    const li = e.target.closest("li[data-name]");
    if (li) { e.preventDefault(); choose(li.dataset.name); }
  });
  pickerInput.addEventListener("blur", function () { setTimeout(function () { if (state.pick && document.activeElement !== pickerInput) closePicker(); }, 0); });
}

// Instances: selection, verdicts, labels, adding and removing, hit tests.

import { flushStroke } from "review/brush.js";
import { setTool } from "review/controls.js";
import { markOthers, request } from "review/draw.js";
import { Instance, buildLo, cropOf, loOf, shown } from "review/item.js";
import { displayName } from "review/labels.js";
import { makeRow, updateRow } from "review/list.js";
import { say } from "review/messages.js";
import { openPicker } from "review/picker.js";
import * as RLE from "rle.js";
import { state, list } from "review/state.js";
import { cancelPrompt } from "review/prompt.js";
import { pushUndo } from "review/undo.js";

export function select(item, inst) {
  if (item.active === inst) return;
  flushStroke();
  cancelPrompt(); // a session refines the instance selected when it began
  if (state.poly) { state.poly = null; request("ui"); }
  const prev = item.active;
  item.active = inst;
  if (inst) cropOf(item, inst);
  if (prev) markOthers(item, prev);
  if (inst) markOthers(item, inst);
  if (item === state.current) {
    request("active");
    request("ui");
    if (prev && prev.row) updateRow(item, prev);
    if (inst && inst.row) {
      updateRow(item, inst);
      inst.row.li.scrollIntoView({ block: "nearest" });
    }
  }
}

export function cycle(dir) {
  const item = state.current, n = item.instances.length;
  if (!n) return;
  let i = item.instances.indexOf(item.active);
  i = i < 0 ? (dir > 0 ? 0 : n - 1) : (i + dir + n) % n;
  select(item, item.instances[i]);
}

export function verdictChanged(item, inst) {
  markOthers(item, inst);
  if (item === state.current) {
    request("active");
    request("ui");
  }
}

// setVerdict accepts or rejects; doing it again goes back to pending.
// Rejecting a new instance removes it.
export function setVerdict(item, inst, verdict) {
  if (!inst) return;
  flushStroke();
  if (inst.status === "new") {
    if (verdict === "rejected") {
      const index = item.instances.indexOf(inst);
      removeInstance(item, inst);
      pushUndo(item, { type: "remove", inst: inst, index: index });
    }
    return;
  }
  const before = inst.status, after = before === verdict ? "pending" : verdict;
  inst.status = after;
  pushUndo(item, { type: "status", inst: inst, before: before, after: after });
  verdictChanged(item, inst);
  updateRow(item, inst);
}

export function relabel(item, inst) {
  if (!inst) { say("Select an instance to relabel (click it, or Tab)."); return; }
  openPicker("Label for this instance", function (name) {
    if (name === inst.label) return;
    pushUndo(item, { type: "label", inst: inst, before: inst.label, after: name });
    inst.label = name;
    updateRow(item, inst);
  });
}

export function addInstance(item) {
  openPicker("Label of the new instance", function (name) {
    const inst = new Instance(item, null);
    inst.label = name;
    inst.crop = RLE.emptyCrop();
    inst.lo = buildLo(item, inst.crop);
    const index = item.instances.length;
    insertInstance(item, inst, index);
    pushUndo(item, { type: "add", inst: inst, index: index });
    select(item, inst);
    if (state.tool === "select") setTool("brush");
    say("New " + displayName(name) + ": paint it with the brush, or draw a polygon (P).");
  });
}

export function insertInstance(item, inst, index) {
  item.instances.splice(Math.min(index, item.instances.length), 0, inst);
  item.zorder.push(inst);
  if (item === state.current) {
    const li = makeRow(item, inst), before = list.children[index];
    list.insertBefore(li, before || null);
  }
  verdictChanged(item, inst);
}

export function removeInstance(item, inst) {
  item.instances.splice(item.instances.indexOf(inst), 1);
  item.zorder.splice(item.zorder.indexOf(inst), 1);
  if (item.hover === inst) item.hover = null;
  if (item.active === inst) select(item, null);
  if (inst.row) { inst.row.li.remove(); inst.row = null; }
  verdictChanged(item, inst);
}

// toggleHidden hides one instance from the screen, or shows it again: a
// view of the work, not an edit, so undo passes it by and the submission
// is the same.
export function toggleHidden(item, inst) {
  if (!inst) { say("Select an instance to hide (click it in the list, or Tab)."); return; }
  inst.hidden = !inst.hidden;
  if (item.hover === inst && inst.hidden) setHover(item, null);
  verdictChanged(item, inst);
  updateRow(item, inst);
}

// hitTest is the instance shown under image pixel (x, y): the selected
// one first, then the smallest.
export function hitTest(item, x, y) {
  x = Math.floor(x); y = Math.floor(y);
  if (x < 0 || y < 0 || x >= item.W || y >= item.H) return null;
  const a = item.active;
  if (a && shown(a) && a.crop) {
    const c = a.crop;
    if (x >= c.x && y >= c.y && x < c.x + c.w && y < c.y + c.h && c.data[(x - c.x) * c.h + (y - c.y)]) return a;
  }
  const lx = Math.floor(x * item.sx), ly = Math.floor(y * item.sy);
  for (let i = item.zorder.length - 1; i >= 0; i--) {
    const inst = item.zorder[i];
    if (inst === a || !shown(inst)) continue;
    const lo = loOf(item, inst);
    if (lx < lo.x || ly < lo.y || lx >= lo.x + lo.w || ly >= lo.y + lo.h) continue;
    for (let k = lo.rows[ly - lo.y]; k < lo.rows[ly - lo.y + 1]; k++) {
      if (lx >= lo.spans[2 * k] && lx < lo.spans[2 * k + 1]) return inst;
    }
  }
  return null;
}

export function setHover(item, inst) {
  if (item.hover === inst) return;
  const prev = item.hover;
  item.hover = inst;
  if (prev && prev.row) prev.row.li.classList.remove("hover");
  if (inst && inst.row) inst.row.li.classList.add("hover");
  request("ui");
}

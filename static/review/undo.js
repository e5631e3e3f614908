// Undo and redo, per item: pixel edits (their tiles before and after),
// verdicts, labels, added and removed instances.

import { flushStroke } from "review/brush.js";
import { request } from "review/draw.js";
import { insertInstance, removeInstance, select, verdictChanged } from "review/instances.js";
import { cropOf } from "review/item.js";
import { updateRow } from "review/list.js";
import { writeTile } from "review/pixels.js";
import { state, $ } from "review/state.js";

const MAX_UNDO = 200;

export function pushUndo(item, op) {
  item.undo.push(op);
  if (item.undo.length > MAX_UNDO) item.undo.shift();
  item.redo.length = 0;
  updateUndoButtons();
}

export function undo() { step(true); }
export function redo() { step(false); }

export function step(back) {
  const item = state.current;
  if (!item || !item.prepared) return;
  flushStroke();
  if (state.poly) { state.poly = null; request("ui"); }
  const op = back ? item.undo.pop() : item.redo.pop();
  if (!op) return;
  (back ? item.redo : item.undo).push(op);
  const inst = op.inst;
  switch (op.type) {
  case "pixels":
    cropOf(item, inst);
    op.tiles.forEach(function (t) { writeTile(item, inst, t, back ? t.before : t.after); });
    inst.edited = true;
    inst.loStale = true;
    if (item.active !== inst) select(item, inst);
    request("active");
    break;
  case "status":
    inst.status = back ? op.before : op.after;
    verdictChanged(item, inst);
    break;
  case "label":
    inst.label = back ? op.before : op.after;
    break;
  case "add":
    if (back) removeInstance(item, inst); else insertInstance(item, inst, op.index);
    break;
  case "remove":
    if (back) insertInstance(item, inst, op.index); else removeInstance(item, inst);
    break;
  }
  if (inst.row) updateRow(item, inst);
  updateUndoButtons();
}

export function updateUndoButtons() {
  $("review-undo").disabled = !state.current || !state.current.undo.length;
  $("review-redo").disabled = !state.current || !state.current.redo.length;
}

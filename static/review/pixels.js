// Editing pixels: an edit copies the 64×64 tiles it touches the first time,
// and at its end keeps, for undo, those that changed, before and after.

import { hitTest, select } from "review/instances.js";
import { cropOf } from "review/item.js";
import { displayName } from "review/labels.js";
import { updateRow } from "review/list.js";
import { say } from "review/messages.js";
import { state } from "review/state.js";
import { pushUndo } from "review/undo.js";

const TILE = 64; // undo granularity, image pixels

export function ensureCover(item, inst, x0, y0, x1, y1) {
  const c = inst.crop;
  if (c.w && x0 >= c.x && y0 >= c.y && x1 < c.x + c.w && y1 < c.y + c.h) return;
  const m = Math.max(32, state.brushSize * 2);
  let nx0 = Math.max(0, x0 - m), ny0 = Math.max(0, y0 - m);
  let nx1 = Math.min(item.W - 1, x1 + m), ny1 = Math.min(item.H - 1, y1 + m);
  if (c.w) {
    nx0 = Math.min(nx0, c.x); ny0 = Math.min(ny0, c.y);
    nx1 = Math.max(nx1, c.x + c.w - 1); ny1 = Math.max(ny1, c.y + c.h - 1);
  }
  const n = { x: nx0, y: ny0, w: nx1 - nx0 + 1, h: ny1 - ny0 + 1, data: null };
  n.data = new Uint8Array(n.w * n.h);
  for (let col = 0; col < c.w; col++) {
    n.data.set(c.data.subarray(col * c.h, (col + 1) * c.h), (col + c.x - n.x) * n.h + (c.y - n.y));
  }
  inst.crop = n;
}

export function tileRect(item, tx, ty) {
  const x = tx * TILE, y = ty * TILE;
  return { tx: tx, ty: ty, x: x, y: y, w: Math.min(TILE, item.W - x), h: Math.min(TILE, item.H - y) };
}

// readTile copies a tile of an instance's mask, column-major.
export function readTile(item, inst, tx, ty) {
  const t = tileRect(item, tx, ty), c = inst.crop;
  t.data = new Uint8Array(t.w * t.h);
  const ix0 = Math.max(t.x, c.x), ix1 = Math.min(t.x + t.w, c.x + c.w);
  const iy0 = Math.max(t.y, c.y), iy1 = Math.min(t.y + t.h, c.y + c.h);
  for (let x = ix0; x < ix1 && iy0 < iy1; x++) {
    const src = (x - c.x) * c.h + (iy0 - c.y);
    t.data.set(c.data.subarray(src, src + iy1 - iy0), (x - t.x) * t.h + (iy0 - t.y));
  }
  return t;
}

export function writeTile(item, inst, t, data) {
  for (let i = 0; i < data.length; i++) {
    if (data[i]) { ensureCover(item, inst, t.x, t.y, t.x + t.w - 1, t.y + t.h - 1); break; }
  }
  const c = inst.crop;
  const ix0 = Math.max(t.x, c.x), ix1 = Math.min(t.x + t.w, c.x + c.w);
  const iy0 = Math.max(t.y, c.y), iy1 = Math.min(t.y + t.h, c.y + c.h);
  for (let x = ix0; x < ix1 && iy0 < iy1; x++) {
    const src = (x - t.x) * t.h + (iy0 - t.y);
    c.data.set(data.subarray(src, src + iy1 - iy0), (x - c.x) * c.h + (iy0 - c.y));
  }
}

// beginEdit starts a pixel edit of an instance: tiles are copied the
// first time the edit touches them, and compared at its end.
export function beginEdit(item, inst) {
  cropOf(item, inst);
  return { item: item, inst: inst, tiles: new Map(), box: null };
}

export function touch(edit, x0, y0, x1, y1) {
  const ntx = Math.ceil(edit.item.W / TILE);
  for (let ty = Math.floor(y0 / TILE); ty <= Math.floor(y1 / TILE); ty++) {
    for (let tx = Math.floor(x0 / TILE); tx <= Math.floor(x1 / TILE); tx++) {
      const key = ty * ntx + tx;
      if (!edit.tiles.has(key)) edit.tiles.set(key, readTile(edit.item, edit.inst, tx, ty));
    }
  }
  const b = edit.box;
  edit.box = b ? { x0: Math.min(b.x0, x0), y0: Math.min(b.y0, y0), x1: Math.max(b.x1, x1), y1: Math.max(b.y1, y1) } : { x0: x0, y0: y0, x1: x1, y1: y1 };
}

export function finishEdit(edit) {
  if (edit === state.stroke) state.stroke = null;
  const item = edit.item, inst = edit.inst, tiles = [];
  edit.tiles.forEach(function (before) {
    const after = readTile(item, inst, before.tx, before.ty);
    for (let i = 0; i < after.data.length; i++) {
      if (after.data[i] !== before.data[i]) {
        tiles.push({ x: before.x, y: before.y, w: before.w, h: before.h, before: before.data, after: after.data });
        break;
      }
    }
  });
  if (!tiles.length) return;
  inst.edited = true;
  inst.loStale = true;
  pushUndo(item, { type: "pixels", inst: inst, tiles: tiles });
  updateRow(item, inst);
}

// stamp paints (val 1) or erases (val 0) a disk of the edit's size

export function canEdit(item, p) {
  const inst = item.active;
  if (!inst) {
    const hit = p && hitTest(item, p.x, p.y);
    if (hit) {
      select(item, hit);
      say("Selected " + displayName(hit.label) + ". Paint again to edit it.");
    } else {
      say("Select an instance first (click it in the list, or Tab), or press N to add one.");
    }
    return false;
  }
  if (inst.status === "rejected") {
    say("This instance is rejected: press A to accept it before editing its mask.");
    return false;
  }
  if (inst.hidden) {
    say("This instance is hidden: press Shift+H (or Show in the list) to show it before editing its mask.");
    return false;
  }
  return true;
}

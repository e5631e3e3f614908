// The brush and the eraser: a disk of the brush size stamped every quarter
// size along the pointer's path, once per animation frame.

import { requestRect, schedule } from "review/draw.js";
import { beginEdit, canEdit, ensureCover, finishEdit, touch } from "review/pixels.js";
import { state, stage } from "review/state.js";

// profileOf gives, for a brush of size s, the half height of the disk at
// each column offset: pixel (cx+dx, cy+dy) is painted when
// 4(dx² + dy²) ≤ s², so size 1 is one pixel and size 3 a 3×3 square.
const profiles = {};
export function profileOf(s) {
  if (profiles[s]) return profiles[s];
  const r = Math.floor(s / 2), p = new Int32Array(2 * r + 1);
  for (let dx = -r; dx <= r; dx++) {
    let h = Math.floor(Math.sqrt(Math.max(0, s * s / 4 - dx * dx)));
    while (4 * (dx * dx + (h + 1) * (h + 1)) <= s * s) h++;
    while (h >= 0 && 4 * (dx * dx + h * h) > s * s) h--;
    p[dx + r] = h;
  }
  profiles[s] = p;
  return p;
}

// ensureCover grows an instance's crop to hold the pixels x0..x1, y0..y1,

export function stamp(edit, fx, fy) {
  const item = edit.item, inst = edit.inst, s = edit.size, prof = edit.profile, r = Math.floor(s / 2);
  const cx = Math.floor(fx), cy = Math.floor(fy);
  let x0 = Math.max(0, cx - r), y0 = Math.max(0, cy - r);
  let x1 = Math.min(item.W - 1, cx + r), y1 = Math.min(item.H - 1, cy + r);
  if (edit.val) {
    if (x0 > x1 || y0 > y1) return;
    ensureCover(item, inst, x0, y0, x1, y1);
  } else {
    const c0 = inst.crop; // nothing to erase outside the crop
    x0 = Math.max(x0, c0.x); y0 = Math.max(y0, c0.y);
    x1 = Math.min(x1, c0.x + c0.w - 1); y1 = Math.min(y1, c0.y + c0.h - 1);
    if (x0 > x1 || y0 > y1) return;
  }
  touch(edit, x0, y0, x1, y1);
  const c = inst.crop, d = c.data;
  for (let x = x0; x <= x1; x++) {
    const hh = prof[x - cx + r];
    if (hh < 0) continue;
    const ya = Math.max(y0, cy - hh), yb = Math.min(y1, cy + hh);
    if (ya > yb) continue;
    const at = (x - c.x) * c.h + (ya - c.y);
    d.fill(edit.val, at, at + yb - ya + 1);
  }
}

// applyStroke stamps the pointer positions that came since the last
// frame, every quarter brush along each segment, and asks for the
// rectangle they changed.
export function applyStroke() {
  const s = state.stroke, step = Math.max(1, s.size / 4);
  s.box = null;
  for (let i = 0; i < s.queue.length; i++) {
    const p = s.queue[i];
    if (!s.last) {
      stamp(s, p.x, p.y);
    } else {
      const dx = p.x - s.last.x, dy = p.y - s.last.y;
      const n = Math.ceil(Math.sqrt(dx * dx + dy * dy) / step);
      for (let j = 1; j <= n; j++) stamp(s, s.last.x + dx * j / n, s.last.y + dy * j / n);
    }
    s.last = p;
  }
  s.queue.length = 0;
  if (s.box) requestRect(s.box.x0, s.box.y0, s.box.x1, s.box.y1);
}

// flushStroke ends a stroke at once (before undo, submit, selection…).
export function flushStroke() {
  if (!state.stroke) return;
  if (state.stroke.queue.length) applyStroke();
  finishEdit(state.stroke);
}

export function startStroke(e, p) {
  const item = state.current, inst = item.active;
  if (!canEdit(item, p)) return;
  const edit = beginEdit(item, inst);
  edit.val = state.tool === "brush" ? 1 : 0;
  edit.size = state.brushSize;
  edit.profile = profileOf(state.brushSize);
  edit.last = null;
  edit.queue = [p];
  edit.ended = false;
  edit.pointerId = e.pointerId;
  state.stroke = edit;
  try { stage.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointer */ }
  schedule();
}

// canEdit says whether the selected instance may be painted, and tells

// Drawing, in four canvases, once per animation frame, only what changed:
// - every instance but the selected one is painted, from a downscaled copy of
//   its mask, into one "others" canvas at review size (long side at most
//   1600); when the selection or a verdict changes only the rectangle of the
//   instances concerned is painted again, and the screen gets that canvas in
//   one drawImage (clipped to that rectangle unless the view moved);
// - the selected instance has a layer of its own, drawn from its
//   full-resolution pixels; a brush stroke redraws only the rectangle it
//   changed, once per animation frame.

import { applyStroke } from "review/brush.js";
import { cropOf, loOf, shown } from "review/item.js";
import { finishEdit } from "review/pixels.js";
import { state, layers, stage, zoomLabel } from "review/state.js";
import { CLOSE_PX } from "review/polygon.js";
import { drawPromptMarks, promptDrawn, promptPreview } from "review/prompt.js";
import { toImage } from "review/view.js";

const need = { image: false, others: false, active: false, prompt: false, rect: null, ui: false }; // others: the whole view of them
let rafId = 0;
let uiBox = null;       // what the ui layer drew last, to clear only that
let lastFrameMs = 0;    // the work of the last frame, whatever it drew

// frames holds the milliseconds of work of each frame of a brush stroke,
// for the benchmark.
export const frames = [];

export function lastFrame() { return lastFrameMs; }

// resetUI forgets what the ui layer drew: the next frame clears it whole.
export function resetUI() { uiBox = null; }

export function clearLayers() {
  for (const L of Object.values(layers)) {
    L.ctx.setTransform(1, 0, 0, 1, 0, 0);
    L.ctx.clearRect(0, 0, L.canvas.width, L.canvas.height);
  }
  uiBox = null;
}

export function schedule() { if (!rafId) rafId = requestAnimationFrame(frame); }

export function request(what) { need[what] = true; schedule(); }

export function requestView() {
  need.image = need.others = need.active = need.prompt = need.ui = true;
  schedule();
  if (state.current && state.current.view) zoomLabel.textContent = "Zoom " + Math.round(state.current.view.zoom * 100) + "%";
}

// requestRect asks for a rectangle of the selected instance's layer, in
// image pixels (inclusive), to be drawn again.
export function requestRect(x0, y0, x1, y1) {
  const v = state.current.view, k = v.zoom * state.dpr;
  const r = { x0: Math.floor((x0 - v.panX) * k) - 1, y0: Math.floor((y0 - v.panY) * k) - 1,
    x1: Math.ceil((x1 + 1 - v.panX) * k) + 1, y1: Math.ceil((y1 + 1 - v.panY) * k) + 1 };
  const n = need.rect;
  need.rect = n ? { x0: Math.min(n.x0, r.x0), y0: Math.min(n.y0, r.y0), x1: Math.max(n.x1, r.x1), y1: Math.max(n.y1, r.y1) } : r;
  schedule();
}

export function frame() {
  rafId = 0;
  const item = state.current;
  if (!item || !item.prepared) return;
  const t0 = performance.now();
  let stroked = false;
  if (state.stroke && state.stroke.queue.length) {
    applyStroke();
    stroked = true;
  }
  if (need.image) drawImageLayer(item);
  const dirty = item.othersDirty ? composeOthers(item) : null;
  if (need.others || dirty === "all") drawOthersLayer(item, null);
  else if (dirty) drawOthersLayer(item, dirty);
  if (need.active) drawActiveLayer(item, null);
  else if (need.rect) drawActiveLayer(item, need.rect);
  if (need.prompt) drawPromptLayer(item);
  if (need.ui || stroked) drawUI(item);
  const drewPrompt = need.prompt;
  need.image = need.others = need.active = need.prompt = need.ui = false;
  need.rect = null;
  lastFrameMs = performance.now() - t0;
  if (drewPrompt) promptDrawn(item);
  if (stroked) {
    frames.push(lastFrameMs);
    if (frames.length > 5000) frames.shift();
  }
  if (state.stroke && state.stroke.ended) finishEdit(state.stroke);
}

export function setTransform(ctx, item, sx, sy) {
  const v = item.view, k = v.zoom * state.dpr;
  ctx.setTransform(k / sx, 0, 0, k / sy, -v.panX * k, -v.panY * k);
}

export function drawImageLayer(item) {
  const L = layers.image, ctx = L.ctx;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, L.canvas.width, L.canvas.height);
  const src = item.fullReady ? item.full : item.thumb;
  if (!src || !src.naturalWidth) return;
  setTransform(ctx, item, 1, 1);
  ctx.imageSmoothingEnabled = item.view.zoom * state.dpr < 3;
  ctx.drawImage(src, 0, 0, item.W, item.H);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
}

// markOthers notes that an instance's part of the overlay of the others
// must be painted again: where its downscaled mask was and, when it was
// edited, where it is now.
export function markOthers(item, inst) {
  if (item.othersDirty === "all") { schedule(); return; }
  let r = inst.lo;
  if (!r || inst.loStale) {
    const was = r;
    r = loOf(item, inst);
    if (was && was.w) item.othersDirty = union(item.othersDirty, was);
  }
  if (r.w) item.othersDirty = union(item.othersDirty, r);
  schedule();
}

// union grows a rectangle {x0, y0, x1, y1} (x1, y1 exclusive) by a mask
// box {x, y, w, h}.
export function union(d, r) {
  if (!d) return { x0: r.x, y0: r.y, x1: r.x + r.w, y1: r.y + r.h };
  return { x0: Math.min(d.x0, r.x), y0: Math.min(d.y0, r.y), x1: Math.max(d.x1, r.x + r.w), y1: Math.max(d.y1, r.y + r.h) };
}

// composeOthers paints every instance but the selected, the rejected
// and the hidden ones into the item's review-size canvas, within the dirty rectangle,
// and returns what it painted ("all" or the rectangle).
export function composeOthers(item) {
  let dirty = item.othersDirty;
  item.othersDirty = null;
  if (!item.others) {
    const c = document.createElement("canvas");
    c.width = item.Wb;
    c.height = item.Hb;
    const ctx = c.getContext("2d"), data = ctx.createImageData(item.Wb, item.Hb);
    item.others = { canvas: c, ctx: ctx, data: data, px: new Uint32Array(data.data.buffer) };
    dirty = "all";
  }
  const o = item.others, px = o.px, Wb = item.Wb;
  let x0 = 0, y0 = 0, x1 = Wb, y1 = item.Hb;
  if (dirty !== "all") {
    x0 = Math.max(0, dirty.x0); y0 = Math.max(0, dirty.y0);
    x1 = Math.min(Wb, dirty.x1); y1 = Math.min(item.Hb, dirty.y1);
    if (x1 <= x0 || y1 <= y0) return null;
  }
  for (let y = y0; y < y1; y++) px.fill(0, y * Wb + x0, y * Wb + x1);
  for (let i = 0; i < item.zorder.length; i++) {
    const inst = item.zorder[i];
    if (inst === item.active || !shown(inst)) continue;
    const lo = loOf(item, inst), rows = lo.rows, sp = lo.spans, color = inst.color.px;
    if (lo.x >= x1 || lo.x + lo.w <= x0) continue;
    const cy0 = Math.max(y0, lo.y), cy1 = Math.min(y1, lo.y + lo.h);
    for (let r = cy0; r < cy1; r++) {
      const at = r * Wb;
      for (let k = rows[r - lo.y], end = rows[r - lo.y + 1]; k < end; k++) {
        const a = Math.max(x0, sp[2 * k]), b = Math.min(x1, sp[2 * k + 1]);
        if (a < b) px.fill(color, at + a, at + b);
      }
    }
  }
  o.ctx.putImageData(o.data, 0, 0, x0, y0, x1 - x0, y1 - y0);
  return dirty === "all" ? "all" : { x0: x0, y0: y0, x1: x1, y1: y1 };
}

// drawOthersLayer puts the overlay of the others on screen: all of it, or
// only the part showing rect (review-size pixels), clipped so the pixels
// are those a full draw gives.
export function drawOthersLayer(item, rect) {
  const L = layers.others, ctx = L.ctx;
  if (!item.others) return;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.save();
  if (rect) {
    const v = item.view, k = v.zoom * state.dpr;
    const dx0 = Math.max(0, Math.floor((rect.x0 / item.sx - v.panX) * k) - 1);
    const dy0 = Math.max(0, Math.floor((rect.y0 / item.sy - v.panY) * k) - 1);
    const dx1 = Math.min(L.canvas.width, Math.ceil((rect.x1 / item.sx - v.panX) * k) + 1);
    const dy1 = Math.min(L.canvas.height, Math.ceil((rect.y1 / item.sy - v.panY) * k) + 1);
    if (dx1 <= dx0 || dy1 <= dy0) { ctx.restore(); return; }
    ctx.beginPath();
    ctx.rect(dx0, dy0, dx1 - dx0, dy1 - dy0);
    ctx.clip();
    ctx.clearRect(dx0, dy0, dx1 - dx0, dy1 - dy0);
  } else {
    ctx.clearRect(0, 0, L.canvas.width, L.canvas.height);
  }
  setTransform(ctx, item, item.sx, item.sy);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(item.others.canvas, 0, 0);
  ctx.restore();
}

let colBuf = new Int32Array(0);

// drawActiveLayer draws the selected instance from its full-resolution
// pixels, each screen pixel sampling the image pixel under its centre:
// the whole layer (rect null) or one rectangle of device pixels.
export function drawActiveLayer(item, rect) {
  const inst = item.active;
  paintCrop(layers.active, item, inst && shown(inst) ? cropOf(item, inst) : null, inst ? inst.color.px : 0, rect);
}

// drawPromptLayer draws the click tool's preview mask, whole.
export function drawPromptLayer(item) {
  const p = promptPreview(item);
  stage.classList.toggle("refining", !!(p && p.refining)); // the preview stands in for the instance it refines
  paintCrop(layers.prompt, item, p ? p.crop : null, p ? p.color : 0, null);
}

// paintCrop draws a full-resolution mask (an rle.js crop, or null for
// none) into a layer in one colour, each screen pixel sampling the image
// pixel under its centre: the whole layer (rect null) or one rectangle of
// device pixels.
function paintCrop(L, item, crop, color, rect) {
  const ctx = L.ctx, cw = L.canvas.width, ch = L.canvas.height;
  if (!rect) ctx.clearRect(0, 0, cw, ch);
  let x0, y0, x1, y1;
  if (rect) {
    x0 = Math.max(0, rect.x0); y0 = Math.max(0, rect.y0);
    x1 = Math.min(cw, rect.x1); y1 = Math.min(ch, rect.y1);
    if (x1 <= x0 || y1 <= y0) return;
    if (!crop) { ctx.clearRect(x0, y0, x1 - x0, y1 - y0); return; }
  } else {
    if (!crop) return;
  }
  const v = item.view, k = v.zoom * state.dpr;
  if (!rect) {
    if (!crop.w) return;
    x0 = Math.max(0, Math.floor((crop.x - v.panX) * k)); y0 = Math.max(0, Math.floor((crop.y - v.panY) * k));
    x1 = Math.min(cw, Math.ceil((crop.x + crop.w - v.panX) * k)); y1 = Math.min(ch, Math.ceil((crop.y + crop.h - v.panY) * k));
    if (x1 <= x0 || y1 <= y0) return;
  }
  const w = x1 - x0, h = y1 - y0;
  const img = ctx.createImageData(w, h), px = new Uint32Array(img.data.buffer);
  if (colBuf.length < w) colBuf = new Int32Array(w * 2);
  const cols = colBuf, d = crop.data, ch2 = crop.h;
  let c;
  for (c = 0; c < w; c++) {
    const ix = Math.floor((x0 + c + 0.5) / k + v.panX) - crop.x;
    cols[c] = ix >= 0 && ix < crop.w ? ix * ch2 : -1;
  }
  for (let r = 0; r < h; r++) {
    const iy = Math.floor((y0 + r + 0.5) / k + v.panY) - crop.y;
    if (iy < 0 || iy >= ch2) continue;
    const row = r * w;
    for (c = 0; c < w; c++) {
      const a = cols[c];
      if (a >= 0 && d[a + iy]) px[row + c] = color;
    }
  }
  ctx.putImageData(img, x0, y0);
}

export function tintOf(item, inst) {
  const lo = loOf(item, inst);
  if (inst.tint || !lo.w) return inst.tint;
  const c = document.createElement("canvas");
  c.width = lo.w;
  c.height = lo.h;
  const ctx = c.getContext("2d"), img = ctx.createImageData(lo.w, lo.h), px = new Uint32Array(img.data.buffer);
  for (let r = 0; r < lo.h; r++) {
    for (let k = lo.rows[r]; k < lo.rows[r + 1]; k++) px.fill(inst.color.px, r * lo.w + lo.spans[2 * k] - lo.x, r * lo.w + lo.spans[2 * k + 1] - lo.x);
  }
  ctx.putImageData(img, 0, 0);
  inst.tint = c;
  return c;
}

// drawUI draws the hover highlight, the polygon under way, the click
// tool's points and box, and the brush outline, clearing only what it drew the time before.
export function drawUI(item) {
  const L = layers.ui, ctx = L.ctx, v = item.view, k = v.zoom * state.dpr;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  if (uiBox) ctx.clearRect(uiBox.x0, uiBox.y0, uiBox.x1 - uiBox.x0, uiBox.y1 - uiBox.y0);
  else ctx.clearRect(0, 0, L.canvas.width, L.canvas.height);
  let box = null;
  function grow(x0, y0, x1, y1) {
    x0 = Math.floor(x0) - 3; y0 = Math.floor(y0) - 3; x1 = Math.ceil(x1) + 3; y1 = Math.ceil(y1) + 3;
    box = box ? { x0: Math.min(box.x0, x0), y0: Math.min(box.y0, y0), x1: Math.max(box.x1, x1), y1: Math.max(box.y1, y1) } : { x0: x0, y0: y0, x1: x1, y1: y1 };
  }
  const hv = item.hover;
  if (hv && state.showMasks && shown(hv) && !state.stroke && !state.pan) {
    const lo = loOf(item, hv);
    if (lo.w) {
      const bx0 = (lo.x / item.sx - v.panX) * k, by0 = (lo.y / item.sy - v.panY) * k;
      const bx1 = ((lo.x + lo.w) / item.sx - v.panX) * k, by1 = ((lo.y + lo.h) / item.sy - v.panY) * k;
      if (hv !== item.active) {
        setTransform(ctx, item, item.sx, item.sy);
        ctx.imageSmoothingEnabled = false;
        ctx.globalAlpha = 0.8;
        ctx.drawImage(tintOf(item, hv), lo.x, lo.y);
        ctx.globalAlpha = 1;
        ctx.setTransform(1, 0, 0, 1, 0, 0);
      }
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#fff";
      ctx.strokeRect(bx0, by0, bx1 - bx0, by1 - by0);
      ctx.setLineDash([4, 4]);
      ctx.strokeStyle = hv.color.css;
      ctx.strokeRect(bx0, by0, bx1 - bx0, by1 - by0);
      ctx.setLineDash([]);
      grow(bx0, by0, bx1, by1);
    }
  }
  if (state.poly && state.poly.item === item && state.poly.points.length) {
    const pts = state.poly.points.map(function (p) { return [(p.x - v.panX) * k, (p.y - v.panY) * k]; });
    const rr = stage.getBoundingClientRect();
    pts.push([(state.pointer.x - rr.left) * state.dpr, (state.pointer.y - rr.top) * state.dpr]);
    ctx.beginPath();
    pts.forEach(function (p, i) { if (i) ctx.lineTo(p[0], p[1]); else ctx.moveTo(p[0], p[1]); grow(p[0], p[1], p[0], p[1]); });
    ctx.lineWidth = 3; ctx.strokeStyle = "#000"; ctx.stroke();
    ctx.lineWidth = 1.5; ctx.strokeStyle = "#fff"; ctx.stroke();
    ctx.fillStyle = "#fff";
    pts.slice(0, -1).forEach(function (p, i) {
      ctx.beginPath();
      ctx.arc(p[0], p[1], i === 0 ? CLOSE_PX * state.dpr * 0.6 : 3 * state.dpr, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    });
    grow(pts[0][0] - CLOSE_PX * state.dpr, pts[0][1] - CLOSE_PX * state.dpr, pts[0][0] + CLOSE_PX * state.dpr, pts[0][1] + CLOSE_PX * state.dpr);
  }
  if ((state.tool === "brush" || state.tool === "eraser") && state.pointer.inside && !state.pan && item.active) {
    const p = toImage(state.pointer.x, state.pointer.y);
    const cx = (Math.floor(p.x) + 0.5 - v.panX) * k, cy = (Math.floor(p.y) + 0.5 - v.panY) * k;
    const rad = Math.max(1.5, state.brushSize / 2 * k);
    ctx.beginPath();
    ctx.arc(cx, cy, rad, 0, 2 * Math.PI);
    ctx.lineWidth = 3; ctx.strokeStyle = "rgba(0,0,0,.7)"; ctx.stroke();
    ctx.lineWidth = 1; ctx.strokeStyle = state.tool === "eraser" ? "#ffb4b4" : "#fff"; ctx.stroke();
    grow(cx - rad, cy - rad, cx + rad, cy + rad);
  }
  drawPromptMarks(ctx, item, grow);
  uiBox = box;
}

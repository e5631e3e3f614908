// The view: how the image sits in the stage (zoom and pan), and the
// mapping from the pointer to image pixels.

import { request, requestView, resetUI } from "review/draw.js";
import { state, layers, stage } from "review/state.js";

export function resize() {
  const r = stage.getBoundingClientRect();
  state.dpr = window.devicePixelRatio || 1;
  state.cssW = r.width;
  state.cssH = r.height;
  Object.keys(layers).forEach(function (k) {
    const c = layers[k].canvas;
    c.width = Math.max(1, Math.round(state.cssW * state.dpr));
    c.height = Math.max(1, Math.round(state.cssH * state.dpr));
    c.style.width = state.cssW + "px";
    c.style.height = state.cssH + "px";
  });
  resetUI();
  if (state.current && state.current.view) {
    if (!state.current.view.moved) fitView(state.current);
    requestView();
  }
}

export function fitView(item) {
  const z = Math.min(state.cssW / item.W, state.cssH / item.H) || 1;
  item.view = { zoom: z, panX: -(state.cssW / z - item.W) / 2, panY: -(state.cssH / z - item.H) / 2, moved: false, fit: z };
}

export function zoomAt(sx, sy, f) {
  const v = state.current.view;
  const ix = sx / v.zoom + v.panX, iy = sy / v.zoom + v.panY;
  const z = Math.min(64, Math.max(v.fit / 2, v.zoom * f));
  v.panX = ix - sx / z;
  v.panY = iy - sy / z;
  v.zoom = z;
  v.moved = true;
  wantFull(state.current);
  requestView();
}

// zoomTo100 shows one image pixel per screen pixel, keeping the centre,
// with a whole-pixel pan so image pixels sit on screen pixels.
export function zoomTo100() {
  const v = state.current.view;
  const cx = state.cssW / 2 / v.zoom + v.panX, cy = state.cssH / 2 / v.zoom + v.panY;
  v.zoom = 1;
  v.panX = Math.round(cx - state.cssW / 2);
  v.panY = Math.round(cy - state.cssH / 2);
  v.moved = true;
  wantFull(state.current);
  requestView();
}

// wantFull loads the full-resolution file once the view needs more
// pixels than the review-size picture has.
export function wantFull(item) {
  if (item.full || !item.thumb || !item.thumb.naturalWidth) return;
  if (item.view.zoom * state.dpr <= (item.thumb.naturalWidth / item.W) * 1.2) return;
  item.full = new Image();
  item.full.onload = function () {
    item.fullReady = true;
    if (state.current === item) request("image");
  };
  item.full.src = item.image.file_url;
}

export function toImage(clientX, clientY) {
  const r = stage.getBoundingClientRect(), v = state.current.view;
  return { x: (clientX - r.left) / v.zoom + v.panX, y: (clientY - r.top) / v.zoom + v.panY };
}

// The polygon tool: click points, close on the first point or with Enter;
// the polygon is filled into the selected instance.

import { request, requestRect } from "review/draw.js";
import { beginEdit, canEdit, ensureCover, finishEdit, touch } from "review/pixels.js";
import { state, stage } from "review/state.js";

// CLOSE_PX: a click this close to a polygon's first point closes it.
export const CLOSE_PX = 8;

export function polygonClick(e, p) {
  const item = state.current;
  if (!state.poly) {
    if (!canEdit(item, p)) return;
    state.poly = { item: item, inst: item.active, points: [] };
  }
  const pts = state.poly.points;
  if (pts.length >= 3) {
    const v = item.view, first = pts[0];
    const r = stage.getBoundingClientRect();
    const fx = (first.x - v.panX) * v.zoom + r.left, fy = (first.y - v.panY) * v.zoom + r.top;
    if (Math.abs(e.clientX - fx) <= CLOSE_PX && Math.abs(e.clientY - fy) <= CLOSE_PX) {
      closePolygon();
      return;
    }
  }
  pts.push(p);
  request("ui");
}

// closePolygon fills the polygon into its instance: a pixel is inside
// when its centre is (even-odd rule).
export function closePolygon() {
  const pl = state.poly;
  state.poly = null;
  request("ui");
  if (!pl || pl.points.length < 3 || pl.item !== state.current) return;
  const item = pl.item, pts = pl.points;
  let minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
  pts.forEach(function (p) {
    minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x);
    minY = Math.min(minY, p.y); maxY = Math.max(maxY, p.y);
  });
  const x0 = Math.max(0, Math.floor(minX)), x1 = Math.min(item.W - 1, Math.ceil(maxX));
  const y0 = Math.max(0, Math.floor(minY)), y1 = Math.min(item.H - 1, Math.ceil(maxY));
  if (x0 > x1 || y0 > y1) return;
  const edit = beginEdit(item, pl.inst);
  ensureCover(item, pl.inst, x0, y0, x1, y1);
  touch(edit, x0, y0, x1, y1);
  const c = pl.inst.crop, ys = [];
  for (let x = x0; x <= x1; x++) {
    const X = x + 0.5;
    ys.length = 0;
    for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      const a = pts[j], b = pts[i];
      if ((a.x <= X) !== (b.x <= X)) ys.push(a.y + (X - a.x) * (b.y - a.y) / (b.x - a.x));
    }
    ys.sort(function (m, n) { return m - n; });
    for (let q = 0; q + 1 < ys.length; q += 2) {
      const ya = Math.max(y0, Math.ceil(ys[q] - 0.5)), yb = Math.min(y1, Math.ceil(ys[q + 1] - 0.5) - 1);
      if (ya > yb) continue;
      const at = (x - c.x) * c.h + (ya - c.y);
      c.data.fill(1, at, at + yb - ya + 1);
    }
  }
  finishEdit(edit);
  requestRect(x0, y0, x1, y1);
}

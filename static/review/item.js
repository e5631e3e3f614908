// Items (an image leased for review) and their instances (a proposal or a
// new mask): decoding proposals in slices, and each mask kept at review size
// as spans for drawing and hit tests.

import * as RLE from "rle.js";

const BASE_SIDE = 1600; // long side of the overlay of unselected masks
let instanceSeq = 0;

export function Item(d) {
  this.id = d.item_id;
  this.kind = d.kind || "first";
  this.image = d.image;
  this.W = d.image.width;
  this.H = d.image.height;
  this.lease = d.lease_expires_at;
  this.state = "open"; // open, saving, saved, lost
  const s = Math.min(1, BASE_SIDE / Math.max(this.W, this.H));
  this.Wb = Math.max(1, Math.round(this.W * s));
  this.Hb = Math.max(1, Math.round(this.H * s));
  this.sx = this.Wb / this.W;
  this.sy = this.Hb / this.H;
  this.instances = [];   // list order: proposals by score, then new ones
  this.zorder = [];      // drawing order: largest first, so small ones stay visible
  this.undo = [];
  this.redo = [];
  this.active = null;
  this.hover = null;
  this.view = null;
  this.spent = 0;
  this.shownAt = 0;
  this.error = null;
  this.skipped = 0;
  this.thumb = null;
  this.full = null;
  this.fullReady = false;
  this.others = null;
  this.othersDirty = "all"; // what of the overlay of the others to paint again: "all", a rectangle, or null
  this.prepared = false;
  this.prompted = false;  // the click tool has asked for a mask of it (its first is timed apart)
  this.decodeMs = 0;     // time spent decoding the proposals, for the benchmark
  this.ready = prepare(this, d.proposals || []);
}

export function Instance(item, p) {
  this.key = ++instanceSeq;
  this.proposalId = p ? p.id : null;
  this.label = p ? p.label : "";
  this.score = p ? p.score : null;
  this.counts = p ? p.mask.counts : null; // the proposal's mask, until edited
  this.crop = null;      // full-resolution pixels (rle.js crop), decoded on demand
  this.edited = false;   // the crop, not counts, is the mask
  this.status = p ? "pending" : "new"; // pending, accepted, rejected; or new
  this.hidden = false;   // hidden from the screen by the reviewer (not a verdict)
  this.area = 0;
  this.lo = null;        // the mask at review size as spans of rows, for drawing and hit tests
  this.loStale = false;
  this.tint = null;
  this.color = colorOf(instanceSeq);
  this.row = null;
}

// shown says whether an instance is drawn and can be clicked on the image.
export function shown(inst) { return inst.status !== "rejected" && !inst.hidden; }

// colorOf spreads hues by the golden angle, so neighbours differ.
export function colorOf(i) {
  const h = (i * 137.508) % 360, s = 0.85, l = 0.55;
  const c = (1 - Math.abs(2 * l - 1)) * s, x = c * (1 - Math.abs((h / 60) % 2 - 1)), m = l - c / 2;
  const rgb = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x] : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
  const r = Math.round((rgb[0] + m) * 255), g = Math.round((rgb[1] + m) * 255), b = Math.round((rgb[2] + m) * 255);
  return { css: "rgb(" + r + "," + g + "," + b + ")", px: ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 };
}

// prepare loads the review-size picture and decodes every proposal in
// slices of a few milliseconds, so the item on screen stays responsive
// while the next one is prepared.
export function prepare(item, proposals) {
  const img = new Image();
  item.thumb = img;
  const loaded = new Promise(function (resolve) {
    img.onload = function () { resolve(); };
    img.onerror = function () { item.thumbFailed = true; resolve(); };
    img.src = item.image.review_url;
  });
  const sorted = proposals.slice().sort(function (a, b) { return b.score - a.score; });
  let i = 0;
  const decoded = new Promise(function (resolve) {
    (function slice() {
      const t0 = performance.now();
      while (i < sorted.length && performance.now() - t0 < 5) {
        const p = sorted[i++], inst = new Instance(item, p);
        try {
          if (!p.mask || p.mask.size[0] !== item.H || p.mask.size[1] !== item.W) throw new Error("mask size differs from the image's");
          const dec = RLE.decode(p.mask);
          inst.area = dec.area;
          inst.lo = buildLo(item, dec.crop);
        } catch (err) {
          item.skipped++;
          continue;
        }
        item.instances.push(inst);
      }
      item.decodeMs += performance.now() - t0;
      if (i < sorted.length) setTimeout(slice, 0);
      else resolve();
    })();
  });
  return Promise.all([loaded, decoded]).then(function () {
    item.zorder = item.instances.slice().sort(function (a, b) { return b.area - a.area; });
    item.prepared = true;
  });
}

export function cropOf(item, inst) {
  if (!inst.crop) inst.crop = inst.counts ? RLE.decode({ size: [item.H, item.W], counts: inst.counts }).crop : RLE.emptyCrop();
  return inst.crop;
}

// buildLo downsamples a crop to review size, keeping a review-size pixel
// when any of its full-size pixels is set, so thin parts stay visible,
// and keeps it as spans: row r of the box {x, y, w, h} holds the
// half-open runs spans[2i] to spans[2i+1] (review-size x) for i from
// rows[r] to rows[r+1]. Painting a span is one fill.
export function buildLo(item, crop) {
  if (!crop.w) return { x: 0, y: 0, w: 0, h: 0, rows: new Int32Array(1), spans: new Int32Array(0) };
  const sx = item.sx, sy = item.sy;
  const x0 = Math.floor(crop.x * sx), y0 = Math.floor(crop.y * sy);
  const x1 = Math.floor((crop.x + crop.w - 1) * sx), y1 = Math.floor((crop.y + crop.h - 1) * sy);
  const w = x1 - x0 + 1, h = y1 - y0 + 1;
  const bytes = new Uint8Array(w * h);
  const rowAt = new Int32Array(crop.h), d = crop.data;
  let r;
  for (r = 0; r < crop.h; r++) rowAt[r] = (Math.floor((crop.y + r) * sy) - y0) * w;
  for (let c = 0; c < crop.w; c++) {
    const lc = Math.floor((crop.x + c) * sx) - x0, base = c * crop.h;
    for (r = 0; r < crop.h; r++) if (d[base + r]) bytes[rowAt[r] + lc] = 1;
  }
  const rows = new Int32Array(h + 1), spans = [];
  let top = h, bottom = -1, left = w, right = -1;
  for (r = 0; r < h; r++) {
    rows[r] = spans.length / 2;
    const at = r * w;
    for (let i = 0; i < w; i++) {
      if (!bytes[at + i]) continue;
      let j = i + 1;
      while (j < w && bytes[at + j]) j++;
      spans.push(x0 + i, x0 + j);
      if (r < top) top = r;
      bottom = r;
      if (i < left) left = i;
      if (j > right) right = j;
      i = j;
    }
  }
  rows[h] = spans.length / 2;
  if (bottom < 0) return { x: 0, y: 0, w: 0, h: 0, rows: new Int32Array(1), spans: new Int32Array(0) };
  // Tighten the box to the spans (a grown crop has empty margins).
  return { x: x0 + left, y: y0 + top, w: right - left, h: bottom - top + 1, rows: rows.slice(top, bottom + 2), spans: new Int32Array(spans) };
}

export function loOf(item, inst) {
  if (!inst.lo || inst.loStale) {
    inst.lo = buildLo(item, cropOf(item, inst));
    inst.loStale = false;
    inst.tint = null;
  }
  return inst.lo;
}

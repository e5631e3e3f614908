// static/rle.js under Node's own test runner (make test-js): the 734 real
// COCO masks of mask/testdata (the file the Go tests read; a copy of
// ../shared/testdata/coco) decode to the area and box pycocotools computed
// and encode back to the same string, and random masks survive encode and
// decode pixel for pixel, from the whole image and from crops. The Go side
// of the same codec is checked in Chromium by TestReviewRLEInBrowser.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import * as RLE from "../rle.js";

const testdata = new URL("../../mask/testdata/", import.meta.url);
const readJSON = (name) => JSON.parse(readFileSync(new URL(name, testdata), "utf8"));

// expand is the plainest reading of uncompressed runs: a row-major bitmap.
function expand(runs, h, w) {
  const rows = new Uint8Array(h * w);
  let pos = 0;
  runs.forEach((n, i) => {
    for (let k = pos; k < pos + n; k++) if (i & 1) rows[(k % h) * w + Math.floor(k / h)] = 1;
    pos += n;
  });
  return rows;
}

// rnd is a small seeded generator (mulberry32), so failures repeat.
function rnd(seed) {
  let s = seed;
  return () => {
    s = (s + 0x6D2B79F5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test("the 734 COCO masks: area and box as pycocotools, counts back unchanged, pixels as their runs", () => {
  const rows = readJSON("instances_val2014_fakesegm100_results.json");
  const ref = readJSON("pycocotools_reference.json").masks;
  assert.equal(rows.length, 734);
  assert.equal(ref.length, 734);
  rows.forEach((r, i) => {
    const m = r.segmentation, [h, w] = m.size;
    const { crop, area } = RLE.decode(m);
    assert.equal(area, ref[i][0], `mask ${i}: area`);
    assert.deepEqual(RLE.bbox(crop), ref[i].slice(1), `mask ${i}: box`);
    assert.equal(RLE.area(crop), area, `mask ${i}: area of the crop`);
    assert.equal(RLE.encode(crop, w, h), m.counts, `mask ${i}: decode then encode changed the string`);
    const want = expand(RLE.runsOf(m.counts), h, w);
    assert.deepEqual(RLE.toRows(crop, w, h), want, `mask ${i}: pixels`);
    assert.equal(RLE.encode(RLE.fromRows(want, w, h), w, h), m.counts, `mask ${i}: encoded from the whole image`);
  });
});

test("random masks: encode then decode keeps every pixel, from the whole image, the tight crop and a loose one", () => {
  const r = rnd(12345);
  for (let i = 0; i < 300; i++) {
    const w = 1 + Math.floor(r() * 120), h = 1 + Math.floor(r() * 120);
    const rows = new Uint8Array(w * h);
    const density = [0, 0.02, 0.5, 0.98, 1][i % 5];
    for (let j = 0; j < rows.length; j++) rows[j] = r() < density ? 1 : 0;
    const counts = RLE.encode(RLE.fromRows(rows, w, h), w, h);
    assert.deepEqual(expand(RLE.runsOf(counts), h, w), rows, `mask ${i}: the runs are the pixels`);
    const { crop } = RLE.decode({ size: [h, w], counts });
    assert.deepEqual(RLE.toRows(crop, w, h), rows, `mask ${i}: decoded pixels`);
    assert.equal(RLE.encode(crop, w, h), counts, `mask ${i}: from the tight crop`);
    const bb = RLE.bbox(crop);
    if (bb[2] > 0) {
      const x0 = Math.max(0, bb[0] - 3), y0 = Math.max(0, bb[1] - 2);
      const x1 = Math.min(w, bb[0] + bb[2] + 4), y1 = Math.min(h, bb[1] + bb[3] + 1);
      const loose = { x: x0, y: y0, w: x1 - x0, h: y1 - y0, data: new Uint8Array((x1 - x0) * (y1 - y0)) };
      for (let x = x0; x < x1; x++) for (let y = y0; y < y1; y++) loose.data[(x - x0) * loose.h + (y - y0)] = rows[y * w + x];
      assert.equal(RLE.encode(loose, w, h), counts, `mask ${i}: from a loose crop`);
    }
  }
});

test("long runs take five and six characters and read back", () => {
  const w = 4000, h = 3000, rows = new Uint8Array(w * h);
  for (let y = 1000; y < 2900; y++) rows.fill(1, y * w + 100, y * w + 3900);
  rows[0] = 1;
  const counts = RLE.encode(RLE.fromRows(rows, w, h), w, h);
  const { crop, area } = RLE.decode({ size: [h, w], counts });
  assert.equal(area, 1900 * 3800 + 1);
  assert.deepEqual(RLE.bbox(crop), [0, 0, 3900, 2900]);
});

test("malformed masks are refused", () => {
  assert.throws(() => RLE.decode({ size: [0, 4], counts: "" }), /not positive/);
  assert.throws(() => RLE.decode({ size: [2, 2], counts: "3" }), /sum to 3 pixels, want 4/);
  assert.throws(() => RLE.decode({ size: [2, 2], counts: "4~" }), /outside '0' to 'o'/);
  assert.throws(() => RLE.decode({ size: [40000, 2], counts: "0" }), /over the limits/);
});

// COCO RLE in the browser (../shared/FORMATS.md), bit for bit as the Go
// package mask and pycocotools read and write it.
//
// A mask of an h×w image is held as a "crop": the pixels of a rectangle
// {x, y, w, h} of the image, one byte each (0 or 1), column-major like the
// RLE itself, so pixel (px, py) is data[(px - x) * h + (py - y)]. Every
// pixel outside the crop is 0. The review screen edits crops; decode makes
// the tightest crop, encode writes the whole image's counts.
//
// An ES module without imports, so Node's test runner loads it as it is
// (static/test/rle.test.js).
const MAX_SIDE = 1 << 15, MAX_PIXELS = 1 << 28; // as mask.MaxSide and mask.MaxPixels
const POW32 = [1, 32, 1024, 32768, 1048576, 33554432, 1073741824, 34359738368];

function checkSize(h, w) {
  if (!(h > 0 && w > 0 && h === Math.floor(h) && w === Math.floor(w))) throw new Error("mask size [" + h + ", " + w + "] is not positive");
  if (h > MAX_SIDE || w > MAX_SIDE || h * w > MAX_PIXELS) throw new Error("mask size " + w + "x" + h + " is over the limits");
}

// runsOf reads a compressed counts string into its run lengths. Numbers
// are summed as doubles, not with 32-bit shifts, so every number the Go
// decoder takes (up to seven characters) reads the same here.
export function runsOf(s) {
  const runs = [], n = s.length;
  let p = 0;
  while (p < n) {
    let x = 0, k = 0;
    for (;;) {
      if (p === n) throw new Error("mask counts end in the middle of a number");
      if (k === 7) throw new Error("mask counts hold a number longer than 7 characters at character " + p);
      const c = s.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error("mask counts hold a character outside '0' to 'o' at character " + p);
      p++;
      x += (c & 0x1f) * POW32[k];
      k++;
      if (!(c & 0x20)) {
        if (c & 0x10) x -= POW32[k]; // the sign: x |= -1 << 5k
        break;
      }
    }
    if (runs.length > 2) x += runs[runs.length - 2];
    if (x < 0) throw new Error("mask counts hold a negative run at run " + runs.length);
    runs.push(x);
  }
  return runs;
}

// countsOf writes run lengths in the compressed string form. Every run
// and every difference of a mask within MAX_PIXELS fits in 32 bits, so
// JavaScript's 32-bit & and >> behave as Go's int64 ones do.
export function countsOf(runs) {
  const out = new Uint8Array(runs.length * 7 + 1);
  let o = 0;
  for (let i = 0; i < runs.length; i++) {
    let x = runs[i];
    if (i > 2) x -= runs[i - 2];
    for (;;) {
      let c = x & 0x1f;
      x >>= 5;
      const more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out[o++] = c + 48;
      if (!more) break;
    }
  }
  let s = "";
  for (let j = 0; j < o; j += 8192) s += String.fromCharCode.apply(null, out.subarray(j, Math.min(o, j + 8192)));
  return s;
}

export function emptyCrop() { return { x: 0, y: 0, w: 0, h: 0, data: new Uint8Array(0) }; }

// decode expands {size: [h, w], counts} into the tightest crop around
// its 1s; it also returns the area. It throws on a malformed mask.
export function decode(rle) {
  const h = rle.size[0], w = rle.size[1];
  checkSize(h, w);
  const runs = runsOf(rle.counts);
  if (runs.length > h * w + 1) throw new Error("mask counts hold more runs than a " + w + "x" + h + " mask can have");
  const total = h * w;
  let pos = 0, area = 0;
  let x0 = w, x1 = -1, y0 = h, y1 = -1;
  for (let i = 0; i < runs.length; i++) {
    const n = runs[i];
    if ((i & 1) && n > 0) {
      const first = pos, last = pos + n - 1;
      const fx = Math.floor(first / h), lx = Math.floor(last / h);
      if (fx < x0) x0 = fx;
      if (lx > x1) x1 = lx;
      if (fx === lx) {
        if (first - fx * h < y0) y0 = first - fx * h;
        if (last - lx * h > y1) y1 = last - lx * h;
      } else {
        y0 = 0; y1 = h - 1; // down to the bottom of one column, on from the top of the next
      }
      area += n;
    }
    pos += n;
    if (pos > total) throw new Error("mask counts sum to more than " + total + " pixels");
  }
  if (pos !== total) throw new Error("mask counts sum to " + pos + " pixels, want " + total);
  if (x1 < 0) return { crop: emptyCrop(), area: 0 };
  const crop = { x: x0, y: y0, w: x1 - x0 + 1, h: y1 - y0 + 1, data: null };
  crop.data = new Uint8Array(crop.w * crop.h);
  pos = 0;
  for (let i = 0; i < runs.length; i++) {
    const n = runs[i];
    if (i & 1) {
      // Column by column: the rest of the run's first column, then on.
      const end = pos + n;
      let p = pos;
      while (p < end) {
        const col = Math.floor(p / h), row = p - col * h;
        const k = Math.min(end - p, h - row);
        const at = (col - crop.x) * crop.h + (row - crop.y);
        crop.data.fill(1, at, at + k);
        p += k;
      }
    }
    pos += n;
  }
  return { crop: crop, area: area };
}

// encode compresses a crop of an h×w image (size [h, w]) into the counts
// string of the whole image, exactly as mask.Encode does.
export function encode(crop, w, h) {
  checkSize(h, w);
  const runs = [];
  let on = 0, run = 0;
  const cx = crop.x, cy = crop.y, cw = crop.w, ch = crop.h, d = crop.data;
  const below = h - cy - ch;
  for (let x = 0; x < w; x++) {
    if (cw === 0 || x < cx || x >= cx + cw) {
      if (on) { runs.push(run); on = 0; run = 0; }
      run += h;
      continue;
    }
    if (cy > 0) {
      if (on) { runs.push(run); on = 0; run = 0; }
      run += cy;
    }
    for (let i = (x - cx) * ch, end = i + ch; i < end; i++) {
      if (d[i] !== on) { runs.push(run); on ^= 1; run = 0; }
      run++;
    }
    if (below > 0) {
      if (on) { runs.push(run); on = 0; run = 0; }
      run += below;
    }
  }
  runs.push(run);
  return countsOf(runs);
}

// area counts a crop's 1s.
export function area(crop) {
  const d = crop.data;
  let n = 0;
  for (let i = 0; i < d.length; i++) n += d[i];
  return n;
}

// bbox is the tight box [x, y, w, h] of a crop's 1s, [0, 0, 0, 0] when
// there are none.
export function bbox(crop) {
  const d = crop.data;
  let x0 = -1, x1 = -1, y0 = crop.h, y1 = -1;
  for (let c = 0; c < crop.w; c++) {
    const base = c * crop.h;
    let any = false;
    for (let r = 0; r < crop.h; r++) {
      if (d[base + r]) {
        any = true;
        if (r < y0) y0 = r;
        if (r > y1) y1 = r;
      }
    }
    if (any) {
      if (x0 < 0) x0 = c;
      x1 = c;
    }
  }
  if (x0 < 0) return [0, 0, 0, 0];
  return [crop.x + x0, crop.y + y0, x1 - x0 + 1, y1 - y0 + 1];
}

// fromRows makes a crop of the whole image from a row-major bitmap
// (index y * w + x, any non-zero byte is 1).
export function fromRows(rows, w, h) {
  const crop = { x: 0, y: 0, w: w, h: h, data: new Uint8Array(w * h) };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) crop.data[x * h + y] = rows[y * w + x] ? 1 : 0;
  }
  return crop;
}

// toRows expands a crop into a row-major bitmap of the whole w×h image.
export function toRows(crop, w, h) {
  const rows = new Uint8Array(w * h);
  for (let c = 0; c < crop.w; c++) {
    for (let r = 0; r < crop.h; r++) {
      if (crop.data[c * crop.h + r]) rows[(crop.y + r) * w + crop.x + c] = 1;
    }
  }
  return rows;
}

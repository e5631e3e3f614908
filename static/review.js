// Review screen (GET /review): leases items through the review API
// (../shared/API.md), shows the photo with every proposal overlaid, and edits
// masks at the photo's full resolution. Masks go back as COCO RLE written by
// rle.js. The reviewer never waits on the server: the next item is leased and
// prepared while this one is worked on, and a submission is sent in the
// background while the next item is already on screen.
//
// Drawing stays smooth with hundreds of proposals:
// - every instance but the selected one is painted, from a downscaled copy of
//   its mask, into one "others" canvas at review size (long side at most
//   1600); when the selection or a verdict changes only the rectangle of the
//   instances concerned is painted again, and the screen gets that canvas in
//   one drawImage (clipped to that rectangle unless the view moved);
// - the selected instance has a layer of its own, drawn from its
//   full-resolution pixels; a brush stroke redraws only the rectangle it
//   changed, once per animation frame;
// - masks are encoded only on submit, and only the edited ones: an untouched
//   proposal goes back with its own counts.
// Undo keeps, per edit, the 64×64 tiles it touched, before and after.
(function () {
  "use strict";
  var app = document.getElementById("review-app");
  var RLE = window.imagehubRLE;
  if (!app || !RLE || !window.fetch || !window.requestAnimationFrame || !window.Map) return;

  var TILE = 64;          // undo granularity, image pixels
  var BASE_SIDE = 1600;   // long side of the overlay of unselected masks
  var RENEW_MS = 60000;   // lease renewal while the page is open
  var POLL_MS = 30000;    // how often an empty queue is asked again
  var MAX_UNDO = 200;
  var CLOSE_PX = 8;       // a click this close to a polygon's first point closes it

  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var filter = {};
  if (app.dataset.label) filter.label = app.dataset.label;
  if (app.dataset.campaign) filter.campaign_id = app.dataset.campaign;

  function $(id) { return document.getElementById(id); }
  var stage = $("review-stage"), overlay = $("review-overlay"), list = $("review-instances");
  var itemInfo = $("review-item"), messageBox = $("review-message"), toolbar = $("review-toolbar");
  var sizeLabel = $("review-size"), zoomLabel = $("review-zoom"), opacityInput = $("review-opacity");
  var showInput = $("review-show"), help = $("review-help");
  var picker = $("review-picker"), pickerInput = $("review-picker-input"), pickerList = $("review-picker-list");
  var layers = {};
  Array.prototype.forEach.call(stage.querySelectorAll("canvas"), function (c) {
    layers[c.dataset.layer] = { canvas: c, ctx: c.getContext("2d") };
  });
  $("review-nojs").hidden = true;
  toolbar.hidden = false;
  stage.hidden = false;
  $("review-side").hidden = false;

  // ---- State.

  var labels = [], labelByName = {};
  var current = null;     // the item on screen
  var ahead = [];         // items leased and being prepared, next first
  var saving = [];        // submissions not yet answered, oldest first
  var saveBusy = false, savedCount = 0, leasing = false, pollTimer = 0, lastRenew = 0;
  var tool = "brush", brushSize = 16, opacity = 0.5, showMasks = true;
  var cssW = 0, cssH = 0, dpr = 1;
  var pointer = { inside: false, x: 0, y: 0 };   // client coordinates
  var stroke = null;      // the brush or eraser stroke under way
  var pan = null;         // the pan under way
  var poly = null;        // the polygon being drawn
  var pick = null;        // the open label picker
  var spaceDown = false;
  var need = { image: false, others: false, active: false, rect: null, ui: false }; // others: the whole view of them
  var rafId = 0, instanceSeq = 0;
  var frames = [];        // milliseconds of work of each frame of a brush stroke
  var lastFrameMs = 0;    // and of the last frame, whatever it drew
  var uiBox = null;       // what the ui layer drew last, to clear only that

  // ---- Server.

  function api(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: { "Accept": "application/json", "X-CSRF-Token": csrf } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (res) {
      return res.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (err) { /* not JSON: status says enough */ }
        return { status: res.status, body: json };
      });
    });
  }

  function errorText(res) {
    if (res && res.body && res.body.error && res.body.error.message) return res.body.error.message;
    return res ? "The server answered " + res.status + "." : "The connection dropped.";
  }

  function loadLabels() {
    // The page's filter lists the taxonomy already; the API has it fresh.
    Array.prototype.forEach.call($("review-label").options, function (o) {
      if (o.value) addLabel({ name: o.value, display_name: o.textContent });
    });
    api("GET", "/api/v1/labels").then(function (res) {
      if (res.status !== 200 || !res.body || !res.body.items) return;
      labels = []; labelByName = {};
      res.body.items.forEach(addLabel);
    }, function () { /* the page's list will do */ });
  }

  function addLabel(l) {
    if (labelByName[l.name]) return;
    var entry = { name: l.name, display: l.display_name || l.name };
    entry.search = (entry.name + " " + entry.display).toLowerCase();
    labels.push(entry);
    labelByName[l.name] = entry;
  }

  function displayName(name) { return labelByName[name] ? labelByName[name].display : name; }

  // ---- Items and instances.

  function Item(d) {
    this.id = d.item_id;
    this.kind = d.kind || "first";
    this.image = d.image;
    this.W = d.image.width;
    this.H = d.image.height;
    this.lease = d.lease_expires_at;
    this.state = "open"; // open, saving, saved, lost
    var s = Math.min(1, BASE_SIDE / Math.max(this.W, this.H));
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
    this.decodeMs = 0;     // time spent decoding the proposals, for the benchmark
    this.ready = prepare(this, d.proposals || []);
  }

  function Instance(item, p) {
    this.key = ++instanceSeq;
    this.proposalId = p ? p.id : null;
    this.label = p ? p.label : "";
    this.score = p ? p.score : null;
    this.counts = p ? p.mask.counts : null; // the proposal's mask, until edited
    this.crop = null;      // full-resolution pixels (rle.js crop), decoded on demand
    this.edited = false;   // the crop, not counts, is the mask
    this.status = p ? "pending" : "new"; // pending, accepted, rejected; or new
    this.area = 0;
    this.lo = null;        // the mask at review size as spans of rows, for drawing and hit tests
    this.loStale = false;
    this.tint = null;
    this.color = colorOf(instanceSeq);
    this.row = null;
  }

  // colorOf spreads hues by the golden angle, so neighbours differ.
  function colorOf(i) {
    var h = (i * 137.508) % 360, s = 0.85, l = 0.55;
    var c = (1 - Math.abs(2 * l - 1)) * s, x = c * (1 - Math.abs((h / 60) % 2 - 1)), m = l - c / 2;
    var rgb = h < 60 ? [c, x, 0] : h < 120 ? [x, c, 0] : h < 180 ? [0, c, x] : h < 240 ? [0, x, c] : h < 300 ? [x, 0, c] : [c, 0, x];
    var r = Math.round((rgb[0] + m) * 255), g = Math.round((rgb[1] + m) * 255), b = Math.round((rgb[2] + m) * 255);
    return { css: "rgb(" + r + "," + g + "," + b + ")", px: ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0 };
  }

  // prepare loads the review-size picture and decodes every proposal in
  // slices of a few milliseconds, so the item on screen stays responsive
  // while the next one is prepared.
  function prepare(item, proposals) {
    var img = new Image();
    item.thumb = img;
    var loaded = new Promise(function (resolve) {
      img.onload = function () { resolve(); };
      img.onerror = function () { item.thumbFailed = true; resolve(); };
      img.src = item.image.review_url;
    });
    var sorted = proposals.slice().sort(function (a, b) { return b.score - a.score; });
    var i = 0;
    var decoded = new Promise(function (resolve) {
      (function slice() {
        var t0 = performance.now();
        while (i < sorted.length && performance.now() - t0 < 5) {
          var p = sorted[i++], inst = new Instance(item, p);
          try {
            if (!p.mask || p.mask.size[0] !== item.H || p.mask.size[1] !== item.W) throw new Error("mask size differs from the image's");
            var dec = RLE.decode(p.mask);
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

  function cropOf(item, inst) {
    if (!inst.crop) inst.crop = inst.counts ? RLE.decode({ size: [item.H, item.W], counts: inst.counts }).crop : RLE.emptyCrop();
    return inst.crop;
  }

  // buildLo downsamples a crop to review size, keeping a review-size pixel
  // when any of its full-size pixels is set, so thin parts stay visible,
  // and keeps it as spans: row r of the box {x, y, w, h} holds the
  // half-open runs spans[2i] to spans[2i+1] (review-size x) for i from
  // rows[r] to rows[r+1]. Painting a span is one fill.
  function buildLo(item, crop) {
    if (!crop.w) return { x: 0, y: 0, w: 0, h: 0, rows: new Int32Array(1), spans: new Int32Array(0) };
    var sx = item.sx, sy = item.sy;
    var x0 = Math.floor(crop.x * sx), y0 = Math.floor(crop.y * sy);
    var x1 = Math.floor((crop.x + crop.w - 1) * sx), y1 = Math.floor((crop.y + crop.h - 1) * sy);
    var w = x1 - x0 + 1, h = y1 - y0 + 1;
    var bytes = new Uint8Array(w * h);
    var rowAt = new Int32Array(crop.h), d = crop.data, r;
    for (r = 0; r < crop.h; r++) rowAt[r] = (Math.floor((crop.y + r) * sy) - y0) * w;
    for (var c = 0; c < crop.w; c++) {
      var lc = Math.floor((crop.x + c) * sx) - x0, base = c * crop.h;
      for (r = 0; r < crop.h; r++) if (d[base + r]) bytes[rowAt[r] + lc] = 1;
    }
    var rows = new Int32Array(h + 1), spans = [], top = h, bottom = -1, left = w, right = -1;
    for (r = 0; r < h; r++) {
      rows[r] = spans.length / 2;
      var at = r * w;
      for (var i = 0; i < w; i++) {
        if (!bytes[at + i]) continue;
        var j = i + 1;
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

  function loOf(item, inst) {
    if (!inst.lo || inst.loStale) {
      inst.lo = buildLo(item, cropOf(item, inst));
      inst.loStale = false;
      inst.tint = null;
    }
    return inst.lo;
  }

  // ---- Drawing.

  function schedule() { if (!rafId) rafId = requestAnimationFrame(frame); }

  function request(what) { need[what] = true; schedule(); }

  function requestView() {
    need.image = need.others = need.active = need.ui = true;
    schedule();
    if (current && current.view) zoomLabel.textContent = Math.round(current.view.zoom * 100) + "%";
  }

  // requestRect asks for a rectangle of the selected instance's layer, in
  // image pixels (inclusive), to be drawn again.
  function requestRect(x0, y0, x1, y1) {
    var v = current.view, k = v.zoom * dpr;
    var r = { x0: Math.floor((x0 - v.panX) * k) - 1, y0: Math.floor((y0 - v.panY) * k) - 1,
      x1: Math.ceil((x1 + 1 - v.panX) * k) + 1, y1: Math.ceil((y1 + 1 - v.panY) * k) + 1 };
    var n = need.rect;
    need.rect = n ? { x0: Math.min(n.x0, r.x0), y0: Math.min(n.y0, r.y0), x1: Math.max(n.x1, r.x1), y1: Math.max(n.y1, r.y1) } : r;
    schedule();
  }

  function frame() {
    rafId = 0;
    var item = current;
    if (!item || !item.prepared) return;
    var t0 = performance.now(), stroked = false;
    if (stroke && stroke.queue.length) {
      applyStroke();
      stroked = true;
    }
    if (need.image) drawImageLayer(item);
    var dirty = item.othersDirty ? composeOthers(item) : null;
    if (need.others || dirty === "all") drawOthersLayer(item, null);
    else if (dirty) drawOthersLayer(item, dirty);
    if (need.active) drawActiveLayer(item, null);
    else if (need.rect) drawActiveLayer(item, need.rect);
    if (need.ui || stroked) drawUI(item);
    need.image = need.others = need.active = need.ui = false;
    need.rect = null;
    lastFrameMs = performance.now() - t0;
    if (stroked) {
      frames.push(lastFrameMs);
      if (frames.length > 5000) frames.shift();
    }
    if (stroke && stroke.ended) finishEdit(stroke);
  }

  function resize() {
    var r = stage.getBoundingClientRect();
    dpr = window.devicePixelRatio || 1;
    cssW = r.width;
    cssH = r.height;
    Object.keys(layers).forEach(function (k) {
      var c = layers[k].canvas;
      c.width = Math.max(1, Math.round(cssW * dpr));
      c.height = Math.max(1, Math.round(cssH * dpr));
      c.style.width = cssW + "px";
      c.style.height = cssH + "px";
    });
    uiBox = null;
    if (current && current.view) {
      if (!current.view.moved) fitView(current);
      requestView();
    }
  }

  function fitView(item) {
    var z = Math.min(cssW / item.W, cssH / item.H) || 1;
    item.view = { zoom: z, panX: -(cssW / z - item.W) / 2, panY: -(cssH / z - item.H) / 2, moved: false, fit: z };
  }

  function zoomAt(sx, sy, f) {
    var v = current.view;
    var ix = sx / v.zoom + v.panX, iy = sy / v.zoom + v.panY;
    var z = Math.min(64, Math.max(v.fit / 2, v.zoom * f));
    v.panX = ix - sx / z;
    v.panY = iy - sy / z;
    v.zoom = z;
    v.moved = true;
    wantFull(current);
    requestView();
  }

  // zoomTo100 shows one image pixel per screen pixel, keeping the centre,
  // with a whole-pixel pan so image pixels sit on screen pixels.
  function zoomTo100() {
    var v = current.view;
    var cx = cssW / 2 / v.zoom + v.panX, cy = cssH / 2 / v.zoom + v.panY;
    v.zoom = 1;
    v.panX = Math.round(cx - cssW / 2);
    v.panY = Math.round(cy - cssH / 2);
    v.moved = true;
    wantFull(current);
    requestView();
  }

  // wantFull loads the full-resolution file once the view needs more
  // pixels than the review-size picture has.
  function wantFull(item) {
    if (item.full || !item.thumb || !item.thumb.naturalWidth) return;
    if (item.view.zoom * dpr <= (item.thumb.naturalWidth / item.W) * 1.2) return;
    item.full = new Image();
    item.full.onload = function () {
      item.fullReady = true;
      if (current === item) request("image");
    };
    item.full.src = item.image.file_url;
  }

  function toImage(clientX, clientY) {
    var r = stage.getBoundingClientRect(), v = current.view;
    return { x: (clientX - r.left) / v.zoom + v.panX, y: (clientY - r.top) / v.zoom + v.panY };
  }

  function setTransform(ctx, item, sx, sy) {
    var v = item.view, k = v.zoom * dpr;
    ctx.setTransform(k / sx, 0, 0, k / sy, -v.panX * k, -v.panY * k);
  }

  function drawImageLayer(item) {
    var L = layers.image, ctx = L.ctx;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, L.canvas.width, L.canvas.height);
    var src = item.fullReady ? item.full : item.thumb;
    if (!src || !src.naturalWidth) return;
    setTransform(ctx, item, 1, 1);
    ctx.imageSmoothingEnabled = item.view.zoom * dpr < 3;
    ctx.drawImage(src, 0, 0, item.W, item.H);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
  }

  // markOthers notes that an instance's part of the overlay of the others
  // must be painted again: where its downscaled mask was and, when it was
  // edited, where it is now.
  function markOthers(item, inst) {
    if (item.othersDirty === "all") { schedule(); return; }
    var r = inst.lo;
    if (!r || inst.loStale) {
      var was = r;
      r = loOf(item, inst);
      if (was && was.w) item.othersDirty = union(item.othersDirty, was);
    }
    if (r.w) item.othersDirty = union(item.othersDirty, r);
    schedule();
  }

  // union grows a rectangle {x0, y0, x1, y1} (x1, y1 exclusive) by a mask
  // box {x, y, w, h}.
  function union(d, r) {
    if (!d) return { x0: r.x, y0: r.y, x1: r.x + r.w, y1: r.y + r.h };
    return { x0: Math.min(d.x0, r.x), y0: Math.min(d.y0, r.y), x1: Math.max(d.x1, r.x + r.w), y1: Math.max(d.y1, r.y + r.h) };
  }

  // composeOthers paints every instance but the selected and the rejected
  // ones into the item's review-size canvas, within the dirty rectangle,
  // and returns what it painted ("all" or the rectangle).
  function composeOthers(item) {
    var dirty = item.othersDirty;
    item.othersDirty = null;
    if (!item.others) {
      var c = document.createElement("canvas");
      c.width = item.Wb;
      c.height = item.Hb;
      var ctx = c.getContext("2d"), data = ctx.createImageData(item.Wb, item.Hb);
      item.others = { canvas: c, ctx: ctx, data: data, px: new Uint32Array(data.data.buffer) };
      dirty = "all";
    }
    var o = item.others, px = o.px, Wb = item.Wb;
    var x0 = 0, y0 = 0, x1 = Wb, y1 = item.Hb;
    if (dirty !== "all") {
      x0 = Math.max(0, dirty.x0); y0 = Math.max(0, dirty.y0);
      x1 = Math.min(Wb, dirty.x1); y1 = Math.min(item.Hb, dirty.y1);
      if (x1 <= x0 || y1 <= y0) return null;
    }
    for (var y = y0; y < y1; y++) px.fill(0, y * Wb + x0, y * Wb + x1);
    for (var i = 0; i < item.zorder.length; i++) {
      var inst = item.zorder[i];
      if (inst === item.active || inst.status === "rejected") continue;
      var lo = loOf(item, inst), rows = lo.rows, sp = lo.spans, color = inst.color.px;
      if (lo.x >= x1 || lo.x + lo.w <= x0) continue;
      var cy0 = Math.max(y0, lo.y), cy1 = Math.min(y1, lo.y + lo.h);
      for (var r = cy0; r < cy1; r++) {
        var at = r * Wb;
        for (var k = rows[r - lo.y], end = rows[r - lo.y + 1]; k < end; k++) {
          var a = Math.max(x0, sp[2 * k]), b = Math.min(x1, sp[2 * k + 1]);
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
  function drawOthersLayer(item, rect) {
    var L = layers.others, ctx = L.ctx;
    if (!item.others) return;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.save();
    if (rect) {
      var v = item.view, k = v.zoom * dpr;
      var dx0 = Math.max(0, Math.floor((rect.x0 / item.sx - v.panX) * k) - 1);
      var dy0 = Math.max(0, Math.floor((rect.y0 / item.sy - v.panY) * k) - 1);
      var dx1 = Math.min(L.canvas.width, Math.ceil((rect.x1 / item.sx - v.panX) * k) + 1);
      var dy1 = Math.min(L.canvas.height, Math.ceil((rect.y1 / item.sy - v.panY) * k) + 1);
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

  var colBuf = new Int32Array(0);

  // drawActiveLayer draws the selected instance from its full-resolution
  // pixels, each screen pixel sampling the image pixel under its centre:
  // the whole layer (rect null) or one rectangle of device pixels.
  function drawActiveLayer(item, rect) {
    var L = layers.active, ctx = L.ctx, cw = L.canvas.width, ch = L.canvas.height;
    var inst = item.active;
    if (!rect) ctx.clearRect(0, 0, cw, ch);
    var x0, y0, x1, y1;
    if (rect) {
      x0 = Math.max(0, rect.x0); y0 = Math.max(0, rect.y0);
      x1 = Math.min(cw, rect.x1); y1 = Math.min(ch, rect.y1);
      if (x1 <= x0 || y1 <= y0) return;
      if (!inst || inst.status === "rejected") { ctx.clearRect(x0, y0, x1 - x0, y1 - y0); return; }
    } else {
      if (!inst || inst.status === "rejected") return;
    }
    var crop = cropOf(item, inst), v = item.view, k = v.zoom * dpr;
    if (!rect) {
      if (!crop.w) return;
      x0 = Math.max(0, Math.floor((crop.x - v.panX) * k)); y0 = Math.max(0, Math.floor((crop.y - v.panY) * k));
      x1 = Math.min(cw, Math.ceil((crop.x + crop.w - v.panX) * k)); y1 = Math.min(ch, Math.ceil((crop.y + crop.h - v.panY) * k));
      if (x1 <= x0 || y1 <= y0) return;
    }
    var w = x1 - x0, h = y1 - y0;
    var img = ctx.createImageData(w, h), px = new Uint32Array(img.data.buffer);
    if (colBuf.length < w) colBuf = new Int32Array(w * 2);
    var c, cols = colBuf, d = crop.data, ch2 = crop.h, color = inst.color.px;
    for (c = 0; c < w; c++) {
      var ix = Math.floor((x0 + c + 0.5) / k + v.panX) - crop.x;
      cols[c] = ix >= 0 && ix < crop.w ? ix * ch2 : -1;
    }
    for (var r = 0; r < h; r++) {
      var iy = Math.floor((y0 + r + 0.5) / k + v.panY) - crop.y;
      if (iy < 0 || iy >= ch2) continue;
      var row = r * w;
      for (c = 0; c < w; c++) {
        var a = cols[c];
        if (a >= 0 && d[a + iy]) px[row + c] = color;
      }
    }
    ctx.putImageData(img, x0, y0);
  }

  function tintOf(item, inst) {
    var lo = loOf(item, inst);
    if (inst.tint || !lo.w) return inst.tint;
    var c = document.createElement("canvas");
    c.width = lo.w;
    c.height = lo.h;
    var ctx = c.getContext("2d"), img = ctx.createImageData(lo.w, lo.h), px = new Uint32Array(img.data.buffer);
    for (var r = 0; r < lo.h; r++) {
      for (var k = lo.rows[r]; k < lo.rows[r + 1]; k++) px.fill(inst.color.px, r * lo.w + lo.spans[2 * k] - lo.x, r * lo.w + lo.spans[2 * k + 1] - lo.x);
    }
    ctx.putImageData(img, 0, 0);
    inst.tint = c;
    return c;
  }

  // drawUI draws the hover highlight, the polygon under way and the brush
  // outline, clearing only what it drew the time before.
  function drawUI(item) {
    var L = layers.ui, ctx = L.ctx, v = item.view, k = v.zoom * dpr;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (uiBox) ctx.clearRect(uiBox.x0, uiBox.y0, uiBox.x1 - uiBox.x0, uiBox.y1 - uiBox.y0);
    else ctx.clearRect(0, 0, L.canvas.width, L.canvas.height);
    var box = null;
    function grow(x0, y0, x1, y1) {
      x0 = Math.floor(x0) - 3; y0 = Math.floor(y0) - 3; x1 = Math.ceil(x1) + 3; y1 = Math.ceil(y1) + 3;
      box = box ? { x0: Math.min(box.x0, x0), y0: Math.min(box.y0, y0), x1: Math.max(box.x1, x1), y1: Math.max(box.y1, y1) } : { x0: x0, y0: y0, x1: x1, y1: y1 };
    }
    var hv = item.hover;
    if (hv && showMasks && hv.status !== "rejected" && !stroke && !pan) {
      var lo = loOf(item, hv);
      if (lo.w) {
        var bx0 = (lo.x / item.sx - v.panX) * k, by0 = (lo.y / item.sy - v.panY) * k;
        var bx1 = ((lo.x + lo.w) / item.sx - v.panX) * k, by1 = ((lo.y + lo.h) / item.sy - v.panY) * k;
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
    if (poly && poly.item === item && poly.points.length) {
      var pts = poly.points.map(function (p) { return [(p.x - v.panX) * k, (p.y - v.panY) * k]; });
      var rr = stage.getBoundingClientRect();
      pts.push([(pointer.x - rr.left) * dpr, (pointer.y - rr.top) * dpr]);
      ctx.beginPath();
      pts.forEach(function (p, i) { if (i) ctx.lineTo(p[0], p[1]); else ctx.moveTo(p[0], p[1]); grow(p[0], p[1], p[0], p[1]); });
      ctx.lineWidth = 3; ctx.strokeStyle = "#000"; ctx.stroke();
      ctx.lineWidth = 1.5; ctx.strokeStyle = "#fff"; ctx.stroke();
      ctx.fillStyle = "#fff";
      pts.slice(0, -1).forEach(function (p, i) {
        ctx.beginPath();
        ctx.arc(p[0], p[1], i === 0 ? CLOSE_PX * dpr * 0.6 : 3 * dpr, 0, 2 * Math.PI);
        ctx.fill();
        ctx.stroke();
      });
      grow(pts[0][0] - CLOSE_PX * dpr, pts[0][1] - CLOSE_PX * dpr, pts[0][0] + CLOSE_PX * dpr, pts[0][1] + CLOSE_PX * dpr);
    }
    if ((tool === "brush" || tool === "eraser") && pointer.inside && !pan && item.active) {
      var p = toImage(pointer.x, pointer.y);
      var cx = (Math.floor(p.x) + 0.5 - v.panX) * k, cy = (Math.floor(p.y) + 0.5 - v.panY) * k;
      var rad = Math.max(1.5, brushSize / 2 * k);
      ctx.beginPath();
      ctx.arc(cx, cy, rad, 0, 2 * Math.PI);
      ctx.lineWidth = 3; ctx.strokeStyle = "rgba(0,0,0,.7)"; ctx.stroke();
      ctx.lineWidth = 1; ctx.strokeStyle = tool === "eraser" ? "#ffb4b4" : "#fff"; ctx.stroke();
      grow(cx - rad, cy - rad, cx + rad, cy + rad);
    }
    uiBox = box;
  }

  // ---- Editing pixels.

  // profileOf gives, for a brush of size s, the half height of the disk at
  // each column offset: pixel (cx+dx, cy+dy) is painted when
  // 4(dx² + dy²) ≤ s², so size 1 is one pixel and size 3 a 3×3 square.
  var profiles = {};
  function profileOf(s) {
    if (profiles[s]) return profiles[s];
    var r = Math.floor(s / 2), p = new Int32Array(2 * r + 1);
    for (var dx = -r; dx <= r; dx++) {
      var h = Math.floor(Math.sqrt(Math.max(0, s * s / 4 - dx * dx)));
      while (4 * (dx * dx + (h + 1) * (h + 1)) <= s * s) h++;
      while (h >= 0 && 4 * (dx * dx + h * h) > s * s) h--;
      p[dx + r] = h;
    }
    profiles[s] = p;
    return p;
  }

  // ensureCover grows an instance's crop to hold the pixels x0..x1, y0..y1,
  // with a margin so a stroke does not grow it at every step.
  function ensureCover(item, inst, x0, y0, x1, y1) {
    var c = inst.crop;
    if (c.w && x0 >= c.x && y0 >= c.y && x1 < c.x + c.w && y1 < c.y + c.h) return;
    var m = Math.max(32, brushSize * 2);
    var nx0 = Math.max(0, x0 - m), ny0 = Math.max(0, y0 - m);
    var nx1 = Math.min(item.W - 1, x1 + m), ny1 = Math.min(item.H - 1, y1 + m);
    if (c.w) {
      nx0 = Math.min(nx0, c.x); ny0 = Math.min(ny0, c.y);
      nx1 = Math.max(nx1, c.x + c.w - 1); ny1 = Math.max(ny1, c.y + c.h - 1);
    }
    var n = { x: nx0, y: ny0, w: nx1 - nx0 + 1, h: ny1 - ny0 + 1, data: null };
    n.data = new Uint8Array(n.w * n.h);
    for (var col = 0; col < c.w; col++) {
      n.data.set(c.data.subarray(col * c.h, (col + 1) * c.h), (col + c.x - n.x) * n.h + (c.y - n.y));
    }
    inst.crop = n;
  }

  function tileRect(item, tx, ty) {
    var x = tx * TILE, y = ty * TILE;
    return { tx: tx, ty: ty, x: x, y: y, w: Math.min(TILE, item.W - x), h: Math.min(TILE, item.H - y) };
  }

  // readTile copies a tile of an instance's mask, column-major.
  function readTile(item, inst, tx, ty) {
    var t = tileRect(item, tx, ty), c = inst.crop;
    t.data = new Uint8Array(t.w * t.h);
    var ix0 = Math.max(t.x, c.x), ix1 = Math.min(t.x + t.w, c.x + c.w);
    var iy0 = Math.max(t.y, c.y), iy1 = Math.min(t.y + t.h, c.y + c.h);
    for (var x = ix0; x < ix1 && iy0 < iy1; x++) {
      var src = (x - c.x) * c.h + (iy0 - c.y);
      t.data.set(c.data.subarray(src, src + iy1 - iy0), (x - t.x) * t.h + (iy0 - t.y));
    }
    return t;
  }

  function writeTile(item, inst, t, data) {
    for (var i = 0; i < data.length; i++) {
      if (data[i]) { ensureCover(item, inst, t.x, t.y, t.x + t.w - 1, t.y + t.h - 1); break; }
    }
    var c = inst.crop;
    var ix0 = Math.max(t.x, c.x), ix1 = Math.min(t.x + t.w, c.x + c.w);
    var iy0 = Math.max(t.y, c.y), iy1 = Math.min(t.y + t.h, c.y + c.h);
    for (var x = ix0; x < ix1 && iy0 < iy1; x++) {
      var src = (x - t.x) * t.h + (iy0 - t.y);
      c.data.set(data.subarray(src, src + iy1 - iy0), (x - c.x) * c.h + (iy0 - c.y));
    }
  }

  // beginEdit starts a pixel edit of an instance: tiles are copied the
  // first time the edit touches them, and compared at its end.
  function beginEdit(item, inst) {
    cropOf(item, inst);
    return { item: item, inst: inst, tiles: new Map(), box: null };
  }

  function touch(edit, x0, y0, x1, y1) {
    var ntx = Math.ceil(edit.item.W / TILE);
    for (var ty = Math.floor(y0 / TILE); ty <= Math.floor(y1 / TILE); ty++) {
      for (var tx = Math.floor(x0 / TILE); tx <= Math.floor(x1 / TILE); tx++) {
        var key = ty * ntx + tx;
        if (!edit.tiles.has(key)) edit.tiles.set(key, readTile(edit.item, edit.inst, tx, ty));
      }
    }
    var b = edit.box;
    edit.box = b ? { x0: Math.min(b.x0, x0), y0: Math.min(b.y0, y0), x1: Math.max(b.x1, x1), y1: Math.max(b.y1, y1) } : { x0: x0, y0: y0, x1: x1, y1: y1 };
  }

  function finishEdit(edit) {
    if (edit === stroke) stroke = null;
    var item = edit.item, inst = edit.inst, tiles = [];
    edit.tiles.forEach(function (before) {
      var after = readTile(item, inst, before.tx, before.ty);
      for (var i = 0; i < after.data.length; i++) {
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
  // centred on the pixel under (fx, fy), image coordinates.
  function stamp(edit, fx, fy) {
    var item = edit.item, inst = edit.inst, s = edit.size, prof = edit.profile, r = Math.floor(s / 2);
    var cx = Math.floor(fx), cy = Math.floor(fy);
    var x0 = Math.max(0, cx - r), y0 = Math.max(0, cy - r);
    var x1 = Math.min(item.W - 1, cx + r), y1 = Math.min(item.H - 1, cy + r);
    if (edit.val) {
      if (x0 > x1 || y0 > y1) return;
      ensureCover(item, inst, x0, y0, x1, y1);
    } else {
      var c0 = inst.crop; // nothing to erase outside the crop
      x0 = Math.max(x0, c0.x); y0 = Math.max(y0, c0.y);
      x1 = Math.min(x1, c0.x + c0.w - 1); y1 = Math.min(y1, c0.y + c0.h - 1);
      if (x0 > x1 || y0 > y1) return;
    }
    touch(edit, x0, y0, x1, y1);
    var c = inst.crop, d = c.data;
    for (var x = x0; x <= x1; x++) {
      var hh = prof[x - cx + r];
      if (hh < 0) continue;
      var ya = Math.max(y0, cy - hh), yb = Math.min(y1, cy + hh);
      if (ya > yb) continue;
      var at = (x - c.x) * c.h + (ya - c.y);
      d.fill(edit.val, at, at + yb - ya + 1);
    }
  }

  // applyStroke stamps the pointer positions that came since the last
  // frame, every quarter brush along each segment, and asks for the
  // rectangle they changed.
  function applyStroke() {
    var s = stroke, step = Math.max(1, s.size / 4);
    s.box = null;
    for (var i = 0; i < s.queue.length; i++) {
      var p = s.queue[i];
      if (!s.last) {
        stamp(s, p.x, p.y);
      } else {
        var dx = p.x - s.last.x, dy = p.y - s.last.y;
        var n = Math.ceil(Math.sqrt(dx * dx + dy * dy) / step);
        for (var j = 1; j <= n; j++) stamp(s, s.last.x + dx * j / n, s.last.y + dy * j / n);
      }
      s.last = p;
    }
    s.queue.length = 0;
    if (s.box) requestRect(s.box.x0, s.box.y0, s.box.x1, s.box.y1);
  }

  // flushStroke ends a stroke at once (before undo, submit, selection…).
  function flushStroke() {
    if (!stroke) return;
    if (stroke.queue.length) applyStroke();
    finishEdit(stroke);
  }

  function startStroke(e, p) {
    var item = current, inst = item.active;
    if (!canEdit(item, p)) return;
    var edit = beginEdit(item, inst);
    edit.val = tool === "brush" ? 1 : 0;
    edit.size = brushSize;
    edit.profile = profileOf(brushSize);
    edit.last = null;
    edit.queue = [p];
    edit.ended = false;
    edit.pointerId = e.pointerId;
    stroke = edit;
    try { stage.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointer */ }
    schedule();
  }

  // canEdit says whether the selected instance may be painted, and tells
  // the reviewer why not.
  function canEdit(item, p) {
    var inst = item.active;
    if (!inst) {
      var hit = p && hitTest(item, p.x, p.y);
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
    return true;
  }

  function polygonClick(e, p) {
    var item = current;
    if (!poly) {
      if (!canEdit(item, p)) return;
      poly = { item: item, inst: item.active, points: [] };
    }
    var pts = poly.points;
    if (pts.length >= 3) {
      var v = item.view, first = pts[0];
      var r = stage.getBoundingClientRect();
      var fx = (first.x - v.panX) * v.zoom + r.left, fy = (first.y - v.panY) * v.zoom + r.top;
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
  function closePolygon() {
    var pl = poly;
    poly = null;
    request("ui");
    if (!pl || pl.points.length < 3 || pl.item !== current) return;
    var item = pl.item, pts = pl.points;
    var minX = Infinity, minY = Infinity, maxX = -Infinity, maxY = -Infinity;
    pts.forEach(function (p) {
      minX = Math.min(minX, p.x); maxX = Math.max(maxX, p.x);
      minY = Math.min(minY, p.y); maxY = Math.max(maxY, p.y);
    });
    var x0 = Math.max(0, Math.floor(minX)), x1 = Math.min(item.W - 1, Math.ceil(maxX));
    var y0 = Math.max(0, Math.floor(minY)), y1 = Math.min(item.H - 1, Math.ceil(maxY));
    if (x0 > x1 || y0 > y1) return;
    var edit = beginEdit(item, pl.inst);
    ensureCover(item, pl.inst, x0, y0, x1, y1);
    touch(edit, x0, y0, x1, y1);
    var c = pl.inst.crop, ys = [];
    for (var x = x0; x <= x1; x++) {
      var X = x + 0.5;
      ys.length = 0;
      for (var i = 0, j = pts.length - 1; i < pts.length; j = i++) {
        var a = pts[j], b = pts[i];
        if ((a.x <= X) !== (b.x <= X)) ys.push(a.y + (X - a.x) * (b.y - a.y) / (b.x - a.x));
      }
      ys.sort(function (m, n) { return m - n; });
      for (var q = 0; q + 1 < ys.length; q += 2) {
        var ya = Math.max(y0, Math.ceil(ys[q] - 0.5)), yb = Math.min(y1, Math.ceil(ys[q + 1] - 0.5) - 1);
        if (ya > yb) continue;
        var at = (x - c.x) * c.h + (ya - c.y);
        c.data.fill(1, at, at + yb - ya + 1);
      }
    }
    finishEdit(edit);
    requestRect(x0, y0, x1, y1);
  }

  // ---- Undo.

  function pushUndo(item, op) {
    item.undo.push(op);
    if (item.undo.length > MAX_UNDO) item.undo.shift();
    item.redo.length = 0;
    updateUndoButtons();
  }

  function undo() { step(true); }
  function redo() { step(false); }

  function step(back) {
    var item = current;
    if (!item || !item.prepared) return;
    flushStroke();
    if (poly) { poly = null; request("ui"); }
    var op = back ? item.undo.pop() : item.redo.pop();
    if (!op) return;
    (back ? item.redo : item.undo).push(op);
    var inst = op.inst;
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

  function updateUndoButtons() {
    $("review-undo").disabled = !current || !current.undo.length;
    $("review-redo").disabled = !current || !current.redo.length;
  }

  // ---- Instances: selection, verdicts, labels.

  function select(item, inst) {
    if (item.active === inst) return;
    flushStroke();
    if (poly) { poly = null; request("ui"); }
    var prev = item.active;
    item.active = inst;
    if (inst) cropOf(item, inst);
    if (prev) markOthers(item, prev);
    if (inst) markOthers(item, inst);
    if (item === current) {
      need.active = need.ui = true;
      schedule();
      if (prev && prev.row) updateRow(item, prev);
      if (inst && inst.row) {
        updateRow(item, inst);
        inst.row.li.scrollIntoView({ block: "nearest" });
      }
    }
  }

  function cycle(dir) {
    var item = current, n = item.instances.length;
    if (!n) return;
    var i = item.instances.indexOf(item.active);
    i = i < 0 ? (dir > 0 ? 0 : n - 1) : (i + dir + n) % n;
    select(item, item.instances[i]);
  }

  function verdictChanged(item, inst) {
    markOthers(item, inst);
    if (item === current) {
      need.active = need.ui = true;
      schedule();
    }
  }

  // setVerdict accepts or rejects; doing it again goes back to pending.
  // Rejecting a new instance removes it.
  function setVerdict(item, inst, verdict) {
    if (!inst) return;
    flushStroke();
    if (inst.status === "new") {
      if (verdict === "rejected") {
        var index = item.instances.indexOf(inst);
        removeInstance(item, inst);
        pushUndo(item, { type: "remove", inst: inst, index: index });
      }
      return;
    }
    var before = inst.status, after = before === verdict ? "pending" : verdict;
    inst.status = after;
    pushUndo(item, { type: "status", inst: inst, before: before, after: after });
    verdictChanged(item, inst);
    updateRow(item, inst);
  }

  function relabel(item, inst) {
    if (!inst) { say("Select an instance to relabel (click it, or Tab)."); return; }
    openPicker("Label for this instance", function (name) {
      if (name === inst.label) return;
      pushUndo(item, { type: "label", inst: inst, before: inst.label, after: name });
      inst.label = name;
      updateRow(item, inst);
    });
  }

  function addInstance(item) {
    openPicker("Label of the new instance", function (name) {
      var inst = new Instance(item, null);
      inst.label = name;
      inst.crop = RLE.emptyCrop();
      inst.lo = buildLo(item, inst.crop);
      var index = item.instances.length;
      insertInstance(item, inst, index);
      pushUndo(item, { type: "add", inst: inst, index: index });
      select(item, inst);
      if (tool === "select") setTool("brush");
      say("New " + displayName(name) + ": paint it with the brush, or draw a polygon (P).");
    });
  }

  function insertInstance(item, inst, index) {
    item.instances.splice(Math.min(index, item.instances.length), 0, inst);
    item.zorder.push(inst);
    if (item === current) {
      var li = makeRow(item, inst), before = list.children[index];
      list.insertBefore(li, before || null);
    }
    verdictChanged(item, inst);
  }

  function removeInstance(item, inst) {
    item.instances.splice(item.instances.indexOf(inst), 1);
    item.zorder.splice(item.zorder.indexOf(inst), 1);
    if (item.hover === inst) item.hover = null;
    if (item.active === inst) select(item, null);
    if (inst.row) { inst.row.li.remove(); inst.row = null; }
    verdictChanged(item, inst);
  }

  function hitTest(item, x, y) {
    x = Math.floor(x); y = Math.floor(y);
    if (x < 0 || y < 0 || x >= item.W || y >= item.H) return null;
    var a = item.active;
    if (a && a.status !== "rejected" && a.crop) {
      var c = a.crop;
      if (x >= c.x && y >= c.y && x < c.x + c.w && y < c.y + c.h && c.data[(x - c.x) * c.h + (y - c.y)]) return a;
    }
    var lx = Math.floor(x * item.sx), ly = Math.floor(y * item.sy);
    for (var i = item.zorder.length - 1; i >= 0; i--) {
      var inst = item.zorder[i];
      if (inst === a || inst.status === "rejected") continue;
      var lo = loOf(item, inst);
      if (lx < lo.x || ly < lo.y || lx >= lo.x + lo.w || ly >= lo.y + lo.h) continue;
      for (var k = lo.rows[ly - lo.y]; k < lo.rows[ly - lo.y + 1]; k++) {
        if (lx >= lo.spans[2 * k] && lx < lo.spans[2 * k + 1]) return inst;
      }
    }
    return null;
  }

  function setHover(item, inst) {
    if (item.hover === inst) return;
    var prev = item.hover;
    item.hover = inst;
    if (prev && prev.row) prev.row.li.classList.remove("hover");
    if (inst && inst.row) inst.row.li.classList.add("hover");
    request("ui");
  }

  // ---- The instance list.

  function buildList(item) {
    list.textContent = "";
    var frag = document.createDocumentFragment();
    item.instances.forEach(function (inst) { frag.appendChild(makeRow(item, inst)); });
    list.appendChild(frag);
  }

  function makeRow(item, inst) {
    var li = document.createElement("li");
    li.className = "review-row";
    li.dataset.key = inst.key;
    var sw = document.createElement("span");
    sw.className = "swatch";
    sw.style.background = inst.color.css;
    var name = document.createElement("button");
    name.type = "button";
    name.className = "link name";
    name.dataset.act = "relabel";
    name.title = "Relabel (L)";
    var score = document.createElement("span");
    score.className = "score";
    var status = document.createElement("span");
    status.className = "badge";
    var accept = document.createElement("button");
    accept.type = "button";
    accept.className = "act accept";
    accept.dataset.act = "accept";
    accept.textContent = "✓";
    accept.title = "Accept (A)";
    var reject = document.createElement("button");
    reject.type = "button";
    reject.className = "act reject";
    reject.dataset.act = "reject";
    reject.textContent = "✕";
    reject.title = "Reject (X)";
    [sw, name, score, status, accept, reject].forEach(function (n) { li.appendChild(n); });
    inst.row = { li: li, name: name, score: score, status: status, accept: accept, reject: reject };
    updateRow(item, inst);
    return li;
  }

  function updateRow(item, inst) {
    var row = inst.row;
    if (!row) return;
    row.li.classList.toggle("selected", item.active === inst);
    row.li.classList.toggle("rejected", inst.status === "rejected");
    row.name.textContent = displayName(inst.label);
    row.score.textContent = inst.score === null ? "new" : inst.score.toFixed(2);
    var text = inst.status === "pending" ? "pending" : inst.status;
    if (inst.edited && inst.status !== "rejected") text += ", edited";
    row.status.textContent = text;
    row.status.className = "badge " + inst.status;
    row.status.title = inst.status === "pending" ? "Counts as accepted when you submit" : "";
    row.accept.setAttribute("aria-pressed", String(inst.status === "accepted"));
    row.reject.setAttribute("aria-pressed", String(inst.status === "rejected"));
    row.accept.hidden = inst.status === "new";
    row.li.dataset.status = inst.status;
  }

  function instanceOfRow(node) {
    var li = node && node.closest && node.closest("li.review-row");
    if (!li || !current) return null;
    var key = Number(li.dataset.key);
    for (var i = 0; i < current.instances.length; i++) if (current.instances[i].key === key) return current.instances[i];
    return null;
  }

  list.addEventListener("click", function (e) {
    var inst = instanceOfRow(e.target), item = current;
    if (!inst) return;
    var act = e.target.closest("button") && e.target.closest("button").dataset.act;
    if (act === "accept") setVerdict(item, inst, "accepted");
    else if (act === "reject") setVerdict(item, inst, "rejected");
    else if (act === "relabel") { select(item, inst); relabel(item, inst); }
    else select(item, inst);
    if (e.target.closest("button")) e.target.closest("button").blur();
  });
  list.addEventListener("mouseover", function (e) {
    var inst = instanceOfRow(e.target);
    if (inst && current) setHover(current, inst);
  });
  list.addEventListener("mouseleave", function () { if (current) setHover(current, null); });

  // ---- The label picker.

  // openPicker shows the label picker. The key that opened it may still
  // type its character into the search box once it has focus (a keydown's
  // default is its character); guard drops that one.
  function openPicker(title, onPick) {
    pick = { onPick: onPick, index: 0, shown: [], guard: true };
    picker.hidden = false;
    pickerInput.value = "";
    pickerInput.placeholder = title + ": type to search";
    pickerInput.setAttribute("aria-label", title);
    filterPicker();
    pickerInput.focus();
  }

  function closePicker() {
    picker.hidden = true;
    pick = null;
    pickerInput.blur();
  }

  // filterPicker shows the labels that match what was typed: names that
  // start with it first, then words that start with it, then the rest
  // that contain it; the photo's own labels lead.
  function filterPicker() {
    var q = pickerInput.value.trim().toLowerCase();
    var own = {};
    ((current && current.image.labels) || []).forEach(function (n) { own[n] = true; });
    var scored = [];
    labels.forEach(function (l) {
      var at = q ? l.search.indexOf(q) : 0;
      if (at < 0) return;
      var rank = at === 0 ? 0 : (l.search.charAt(at - 1) === " " ? 1 : 2);
      if (l.display.toLowerCase().indexOf(q) === 0) rank = 0;
      scored.push({ l: l, rank: rank - (own[l.name] ? 0.5 : 0) });
    });
    scored.sort(function (a, b) { return a.rank - b.rank || a.l.display.localeCompare(b.l.display); });
    pick.shown = scored.slice(0, 50).map(function (s) { return s.l; });
    pick.index = 0;
    pickerList.textContent = "";
    pick.shown.forEach(function (l, i) {
      var li = document.createElement("li");
      li.setAttribute("role", "option");
      li.dataset.name = l.name;
      li.textContent = l.display + (l.display !== l.name ? " (" + l.name + ")" : "");
      if (own[l.name]) li.className = "own";
      li.setAttribute("aria-selected", String(i === 0));
      pickerList.appendChild(li);
    });
    if (!pick.shown.length) {
      var none = document.createElement("li");
      none.className = "none";
      none.textContent = "No label matches. An admin adds labels on the Labels page.";
      pickerList.appendChild(none);
    }
  }

  function movePick(d) {
    if (!pick.shown.length) return;
    pick.index = (pick.index + d + pick.shown.length) % pick.shown.length;
    Array.prototype.forEach.call(pickerList.children, function (li, i) { li.setAttribute("aria-selected", String(i === pick.index)); });
    pickerList.children[pick.index].scrollIntoView({ block: "nearest" });
  }

  function choose(name) {
    var p = pick;
    closePicker();
    if (p && name) p.onPick(name);
  }

  pickerInput.addEventListener("input", function () { if (pick) filterPicker(); });
  pickerInput.addEventListener("beforeinput", function (e) { if (pick && pick.guard) e.preventDefault(); });
  pickerInput.addEventListener("keydown", function (e) {
    if (!pick) return;
    pick.guard = false;
    if (e.key === "ArrowDown") { e.preventDefault(); movePick(1); }
    else if (e.key === "ArrowUp") { e.preventDefault(); movePick(-1); }
    else if (e.key === "Enter") { e.preventDefault(); var l = pick.shown[pick.index]; choose(l && l.name); }
    else if (e.key === "Escape" || e.key === "Tab") { e.preventDefault(); closePicker(); }
    e.stopPropagation();
  });
  pickerList.addEventListener("mousedown", function (e) {
    var li = e.target.closest("li[data-name]");
    if (li) { e.preventDefault(); choose(li.dataset.name); }
  });
  pickerInput.addEventListener("blur", function () { setTimeout(function () { if (pick && document.activeElement !== pickerInput) closePicker(); }, 0); });

  // ---- Tools and controls.

  function setTool(t) {
    if (poly && t !== "polygon") { poly = null; }
    tool = t;
    Array.prototype.forEach.call(toolbar.querySelectorAll("[data-tool]"), function (b) {
      b.setAttribute("aria-pressed", String(b.dataset.tool === t));
    });
    stage.dataset.tool = t;
    if (current) request("ui");
  }

  function setBrush(s) {
    brushSize = Math.max(1, Math.min(500, Math.round(s)));
    sizeLabel.textContent = brushSize + " px";
    if (current) request("ui");
  }

  function setOpacity(o) {
    opacity = Math.max(0, Math.min(1, o));
    opacityInput.value = String(Math.round(opacity * 100));
    layers.others.canvas.style.opacity = layers.active.canvas.style.opacity = String(opacity);
  }

  function setShow(on) {
    showMasks = on;
    showInput.checked = on;
    layers.others.canvas.style.visibility = layers.active.canvas.style.visibility = on ? "" : "hidden";
    if (current) request("ui");
  }

  toolbar.addEventListener("click", function (e) {
    var b = e.target.closest("button");
    if (!b) return;
    if (b.dataset.tool) setTool(b.dataset.tool);
    else if (b.id === "review-add" && current && current.prepared) addInstance(current);
    else if (b.id === "review-undo") undo();
    else if (b.id === "review-redo") redo();
    else if (b.id === "review-submit") submit();
    if (b.id !== "review-add") b.blur();
  });
  opacityInput.addEventListener("input", function () { setOpacity(Number(opacityInput.value) / 100); });
  opacityInput.addEventListener("change", function () { opacityInput.blur(); });
  showInput.addEventListener("change", function () { setShow(showInput.checked); showInput.blur(); });

  // ---- Keyboard.

  function typing(t) {
    if (!t || !t.tagName) return false;
    return t.tagName === "TEXTAREA" || t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "range" && t.type !== "checkbox");
  }

  document.addEventListener("keydown", function (e) {
    if (pick || typing(e.target)) return;
    var item = current, ready = item && item.prepared, key = e.key;
    if (e.ctrlKey || e.metaKey) {
      if (key === "z" || key === "Z") { e.preventDefault(); if (e.shiftKey) redo(); else undo(); }
      else if (key === "y" || key === "Y") { e.preventDefault(); redo(); }
      return;
    }
    if (e.altKey) return;
    var tag = e.target && e.target.tagName;
    if ((tag === "A" || tag === "SUMMARY") && (key === "Enter" || key === " ")) return; // follow the link, open the help
    if (tag === "BUTTON" && (key === "Enter" || key === " ")) e.preventDefault(); // the shortcut, not a click as well
    switch (key) {
    case "?": help.open = !help.open; if (help.open) help.scrollIntoView({ block: "nearest" }); break;
    case " ": spaceDown = true; stage.classList.add("grab"); break;
    case "Enter":
      if (poly) closePolygon();
      else if (!e.repeat) submit(); // a held Enter must not clear the queue
      break;
    case "Tab": if (!ready) return; cycle(e.shiftKey ? -1 : 1); break;
    case "a": case "A": if (!ready || !item.active) return; setVerdict(item, item.active, "accepted"); if (item.active && item.active.status === "accepted") cycle(1); break;
    case "x": case "X": case "Delete":
      if (!ready || !item.active) return;
      var was = item.active;
      setVerdict(item, was, "rejected");
      if (item.active === was && was.status === "rejected") cycle(1);
      break;
    case "Backspace":
      if (!poly) return;
      poly.points.pop();
      if (!poly.points.length) poly = null;
      request("ui");
      break;
    case "l": case "L": if (ready) relabel(item, item.active); break;
    case "n": case "N": if (ready) addInstance(item); break;
    case "v": case "V": setTool("select"); break;
    case "b": case "B": setTool("brush"); break;
    case "e": case "E": setTool("eraser"); break;
    case "p": case "P": setTool("polygon"); break;
    case "[": setBrush(brushSize < 10 ? brushSize - 1 : brushSize / 1.25); break;
    case "]": setBrush(brushSize < 8 ? brushSize + 1 : brushSize * 1.25); break;
    case "h": case "H": setShow(!showMasks); break;
    case ",": setOpacity(opacity - 0.1); break;
    case ".": setOpacity(opacity + 0.1); break;
    case "+": case "=": if (ready) zoomAt(cssW / 2, cssH / 2, 1.25); break;
    case "-": case "_": if (ready) zoomAt(cssW / 2, cssH / 2, 0.8); break;
    case "0": if (ready) { fitView(item); requestView(); } break;
    case "1": if (ready) zoomTo100(); break;
    case "Escape":
      if (poly) { poly = null; request("ui"); }
      else if (help.open) help.open = false;
      else if (ready) select(item, null);
      break;
    default: return;
    }
    e.preventDefault();
  });
  document.addEventListener("keyup", function (e) {
    if (pick) pick.guard = false;
    if (e.key === " ") { spaceDown = false; stage.classList.remove("grab"); }
  });
  window.addEventListener("blur", function () { spaceDown = false; stage.classList.remove("grab"); });

  // ---- Pointer.

  stage.addEventListener("pointerdown", function (e) {
    var item = current;
    if (!item || !item.prepared || !item.view) return;
    if (pick) closePicker();
    pointer.x = e.clientX; pointer.y = e.clientY; pointer.inside = true;
    if (e.button === 1 || (e.button === 0 && spaceDown)) {
      e.preventDefault();
      pan = { x: e.clientX, y: e.clientY, panX: item.view.panX, panY: item.view.panY };
      stage.classList.add("panning");
      try { stage.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointer */ }
      return;
    }
    if (e.button !== 0) return;
    e.preventDefault();
    var p = toImage(e.clientX, e.clientY);
    if (tool === "select") select(item, hitTest(item, p.x, p.y));
    else if (tool === "polygon") polygonClick(e, p);
    else startStroke(e, p);
  });

  stage.addEventListener("pointermove", function (e) {
    var item = current;
    if (!item || !item.prepared || !item.view) return;
    pointer.x = e.clientX; pointer.y = e.clientY; pointer.inside = true;
    if (pan) {
      var v = item.view;
      v.panX = pan.panX - (e.clientX - pan.x) / v.zoom;
      v.panY = pan.panY - (e.clientY - pan.y) / v.zoom;
      v.moved = true;
      requestView();
      return;
    }
    if (stroke && e.pointerId === stroke.pointerId) {
      var evs = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      if (!evs.length) evs = [e];
      for (var i = 0; i < evs.length; i++) stroke.queue.push(toImage(evs[i].clientX, evs[i].clientY));
      schedule();
      return;
    }
    var p = toImage(e.clientX, e.clientY);
    setHover(item, hitTest(item, p.x, p.y));
    if (tool !== "select") request("ui");
  });

  function pointerEnd(e) {
    if (pan) {
      pan = null;
      stage.classList.remove("panning");
      request("ui");
    }
    if (stroke && e.pointerId === stroke.pointerId) {
      stroke.queue.push(toImage(e.clientX, e.clientY));
      stroke.ended = true;
      schedule();
    }
  }
  stage.addEventListener("pointerup", pointerEnd);
  stage.addEventListener("pointercancel", pointerEnd);
  stage.addEventListener("pointerleave", function () {
    pointer.inside = false;
    if (current && current.prepared && !stroke) { setHover(current, null); request("ui"); }
  });
  stage.addEventListener("contextmenu", function (e) { e.preventDefault(); });
  stage.addEventListener("mousedown", function (e) { if (e.button === 1) e.preventDefault(); }); // no autoscroll
  stage.addEventListener("wheel", function (e) {
    if (!current || !current.prepared || !current.view) return;
    e.preventDefault();
    var r = stage.getBoundingClientRect();
    var dy = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaMode === 2 ? e.deltaY * 400 : e.deltaY;
    zoomAt(e.clientX - r.left, e.clientY - r.top, Math.pow(2, -dy / 300));
  }, { passive: false });

  // ---- Messages.

  function say(text, kind, action) {
    messageBox.textContent = "";
    messageBox.className = "review-message" + (kind ? " " + kind : "");
    if (!text) return;
    var p = document.createElement("p");
    p.textContent = text;
    messageBox.appendChild(p);
    if (action) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = action.text;
      b.addEventListener("click", function () { b.blur(); action.run(); });
      messageBox.appendChild(b);
    }
  }

  function waiting(text) {
    overlay.textContent = text || "";
    overlay.hidden = !text;
  }

  function describe(item) {
    itemInfo.textContent = "";
    var h = document.createElement("p");
    var kind = document.createElement("span");
    kind.className = "badge " + item.kind;
    kind.textContent = item.kind === "second" ? "second review (blind)" : "first review";
    h.appendChild(kind);
    h.appendChild(document.createTextNode(" " + item.W + " × " + item.H + " px · " + item.instances.length + " proposals"));
    itemInfo.appendChild(h);
    var p = document.createElement("p");
    p.className = "hint";
    var lease = item.lease ? new Date(item.lease) : null;
    p.textContent = (item.image.labels && item.image.labels.length ? "Photo labels: " + item.image.labels.map(displayName).join(", ") + ". " : "") +
      (lease ? "Leased to you until " + lease.toLocaleTimeString() + " (renewed while this page is open)." : "");
    itemInfo.appendChild(p);
    if (item.kind === "second") {
      var s = document.createElement("p");
      s.className = "hint";
      s.textContent = "The first reviewer's masks are hidden: add (N) and draw every instance you see.";
      itemInfo.appendChild(s);
    }
    if (item.skipped) {
      var w = document.createElement("p");
      w.className = "error";
      w.textContent = item.skipped + " proposals had masks this page cannot read; they are left out.";
      itemInfo.appendChild(w);
    }
  }

  // ---- The queue.

  function show(item) {
    current = item;
    stroke = null; poly = null; pan = null;
    say("");
    list.textContent = "";
    itemInfo.textContent = "";
    app.dataset.item = "";
    updateUndoButtons();
    if (!item.prepared) {
      waiting("Loading the image…");
      item.ready.then(function () { if (current === item) present(item); });
      return;
    }
    present(item);
  }

  function present(item) {
    waiting("");
    if (!item.view) fitView(item);
    item.shownAt = performance.now();
    buildList(item);
    describe(item);
    item.othersDirty = "all";
    uiBox = null;
    requestView();
    updateUndoButtons();
    if (item.thumbFailed) say("The picture could not be loaded; the masks are shown on a blank background.", "error");
    if (item.error) showItemError(item);
    app.dataset.item = item.id;
    fill();
  }

  // fill keeps one item leased ahead of the one on screen, so it shows at
  // once after a submit. The server never hands back an item this reviewer
  // already holds.
  function fill() {
    if (leasing || pollTimer) return;
    if (!current && ahead.length) { show(ahead.shift()); return; }
    if (current && ahead.length) return;
    leasing = true;
    api("POST", "/api/v1/review/next", filter).then(function (res) {
      leasing = false;
      if (res.status === 200 && res.body && res.body.item_id) {
        var item = new Item(res.body);
        if (!current) show(item);
        else { ahead.push(item); }
        return;
      }
      if (res.status === 204) {
        if (!current) {
          waiting("Nothing is waiting for review" + (filter.label || filter.campaign_id ? " with these filters" : "") + ". This page looks again every 30 seconds.");
          app.dataset.item = "none";
        }
        later(POLL_MS);
        return;
      }
      if (res.status === 401) {
        say("You are signed out. Sign in again (in another tab, to keep this one) and the queue goes on.", "error");
      } else {
        say("Could not get the next image: " + errorText(res), "error");
      }
      later(15000);
    }, function () {
      leasing = false;
      say("No connection to the server; trying again shortly.", "error");
      later(5000);
    });
  }

  function later(ms) {
    pollTimer = setTimeout(function () { pollTimer = 0; fill(); }, ms);
  }

  function submit() {
    var item = current;
    if (!item || !item.prepared) return;
    if (item.state === "lost") { advance(); return; }
    if (item.state !== "open") return;
    flushStroke();
    if (poly) closePolygon();
    var out;
    try {
      out = payloadOf(item);
    } catch (err) {
      say("This review cannot be sent: " + err.message, "error");
      return;
    }
    item.spent += performance.now() - item.shownAt;
    out.body.time_spent_ms = Math.round(item.spent);
    item.state = "saving";
    item.error = null;
    Array.prototype.forEach.call(list.querySelectorAll(".invalid"), function (li) { li.classList.remove("invalid"); });
    saving.push({ item: item, body: out.body, index: out.index, tries: 0, notBefore: 0 });
    pumpSaves();
    advance();
  }

  function advance() {
    current = null;
    var next = ahead.shift();
    if (pollTimer && !next) { clearTimeout(pollTimer); pollTimer = 0; }
    if (next) show(next);
    else { list.textContent = ""; itemInfo.textContent = ""; clearLayers(); waiting("Loading the next image…"); fill(); }
  }

  function clearLayers() {
    Object.keys(layers).forEach(function (k) {
      var L = layers[k];
      L.ctx.setTransform(1, 0, 0, 1, 0, 0);
      L.ctx.clearRect(0, 0, L.canvas.width, L.canvas.height);
    });
    uiBox = null;
  }

  // payloadOf builds the submission: untouched proposals with their own
  // counts, edited masks encoded now; an instance erased to nothing is a
  // rejected proposal, or left out when it was new.
  function payloadOf(item) {
    var instances = [], rejected = [], index = [];
    item.instances.forEach(function (inst) {
      if (inst.status === "rejected") {
        if (inst.proposalId) rejected.push(inst.proposalId);
        return;
      }
      var counts = inst.counts;
      if (inst.edited || !counts) {
        var crop = cropOf(item, inst);
        if (!RLE.area(crop)) {
          if (inst.proposalId) rejected.push(inst.proposalId);
          return;
        }
        counts = RLE.encode(crop, item.W, item.H);
      }
      var one = { label: inst.label, mask: { size: [item.H, item.W], counts: counts } };
      if (inst.proposalId) one.proposal_id = inst.proposalId;
      instances.push(one);
      index.push(inst);
    });
    return { body: { instances: instances, rejected_proposals: rejected }, index: index };
  }

  // pumpSaves sends the submissions one at a time, retrying what failed
  // for want of a server; nothing submitted is dropped silently.
  function pumpSaves() {
    if (saveBusy || !saving.length) return;
    var s = saving[0], wait = s.notBefore - Date.now();
    if (wait > 0) { setTimeout(pumpSaves, wait); return; }
    saveBusy = true;
    api("POST", "/api/v1/review/" + encodeURIComponent(s.item.id), s.body).then(function (res) {
      saveBusy = false;
      if (res.status === 200) {
        saving.shift();
        s.item.state = "saved";
        savedCount++;
        app.dataset.saved = String(savedCount);
        if (!messageBox.classList.contains("error")) say(savedCount === 1 ? "Saved." : "Saved " + savedCount + " reviews.");
      } else if (res.status === 409) {
        saving.shift();
        s.item.state = "lost";
        say("Your review of an earlier image was not saved: " + errorText(res), "error");
      } else if (res.status >= 400 && res.status < 500 && res.status !== 401 && res.status !== 408 && res.status !== 429) {
        saving.shift();
        s.item.state = "open";
        var err = res.body && res.body.error ? res.body.error : {};
        s.item.error = { message: errorText(res), field: err.field || "", inst: instanceOfField(s, err.field || "") };
        bringBack(s.item);
      } else {
        retry(s, res);
      }
      pumpSaves();
    }, function () {
      saveBusy = false;
      retry(s, null);
      pumpSaves();
    });
  }

  function retry(s, res) {
    s.tries++;
    var delay = Math.min(30000, 1000 * Math.pow(2, s.tries - 1));
    s.notBefore = Date.now() + delay;
    var why = !res ? "no connection" : res.status === 401 ? "you are signed out; sign in again in another tab" : "the server answered " + res.status;
    say("Saving your last review failed (" + why + "); trying again in " + Math.round(delay / 1000) + " s. Nothing is lost.", "error");
  }

  function instanceOfField(s, field) {
    var m = /^instances\[(\d+)\]/.exec(field);
    if (m) return s.index[Number(m[1])] || null;
    m = /^rejected_proposals\[(\d+)\]/.exec(field);
    if (m) {
      var id = s.body.rejected_proposals[Number(m[1])];
      for (var i = 0; i < s.item.instances.length; i++) if (s.item.instances[i].proposalId === id) return s.item.instances[i];
    }
    return null;
  }

  // bringBack puts a refused submission back on screen, the item it
  // replaced waiting ahead, so the reviewer can fix what the server named.
  function bringBack(item) {
    if (current && current !== item) {
      current.spent += performance.now() - current.shownAt;
      ahead.unshift(current);
    }
    show(item);
  }

  function showItemError(item) {
    var e = item.error;
    say("The server refused this review: " + e.message + " Fix it and press Enter again.", "error");
    if (e.inst && item.instances.indexOf(e.inst) >= 0) {
      select(item, e.inst);
      if (e.inst.row) e.inst.row.li.classList.add("invalid");
    }
  }

  // ---- Leases.

  function held() {
    var out = [];
    if (current && current.state === "open") out.push(current);
    ahead.forEach(function (it) { out.push(it); });
    saving.forEach(function (s) { out.push(s.item); });
    return out;
  }

  function renewAll() {
    lastRenew = Date.now();
    held().forEach(function (item) {
      api("POST", "/api/v1/review/" + encodeURIComponent(item.id) + "/renew").then(function (res) {
        if (res.status === 200 && res.body && res.body.lease_expires_at) {
          item.lease = res.body.lease_expires_at;
          if (item === current && item.prepared) describe(item);
        } else if (res.status === 409) {
          leaseLost(item, res);
        }
      }, function () { /* tried again in a minute */ });
    });
  }

  function leaseLost(item, res) {
    if (item.state !== "open") return; // a submission in flight answers for itself
    item.state = "lost";
    var i = ahead.indexOf(item);
    if (i >= 0) {
      ahead.splice(i, 1);
      fill();
      return;
    }
    if (item === current) {
      say("Your lease on this image has expired and another reviewer may have it now, so your edits here cannot be saved. " + errorText(res),
        "error", { text: "Go to the next image", run: advance });
    }
  }

  setInterval(renewAll, RENEW_MS);
  document.addEventListener("visibilitychange", function () {
    if (!current) return;
    if (document.hidden) {
      current.spent += performance.now() - current.shownAt;
    } else {
      current.shownAt = performance.now();
      if (Date.now() - lastRenew > RENEW_MS / 2) renewAll();
    }
  });
  // Leaving the page gives back the items leased ahead (and the one on
  // screen unless its edits are kept for the warning below), so other
  // reviewers get them now rather than when the leases run out.
  window.addEventListener("pagehide", function () {
    var give = ahead.slice();
    if (current && current.state === "open" && !current.undo.length) give.push(current);
    give.forEach(function (item) {
      fetch("/api/v1/review/" + encodeURIComponent(item.id) + "/release", {
        method: "POST", credentials: "same-origin", keepalive: true, headers: { "X-CSRF-Token": csrf }
      }).catch(function () { /* the lease runs out on its own */ });
    });
  });
  window.addEventListener("beforeunload", function (e) {
    if (saving.length || (current && current.undo.length)) {
      e.preventDefault();
      e.returnValue = "";
    }
  });

  // ---- Start.

  // imagehubReview lets the browser tests read what the page shows and
  // how long its frames took, and renew the leases without waiting a
  // minute.
  window.imagehubReview = {
    view: function () {
      if (!current || !current.view) return null;
      var r = stage.getBoundingClientRect(), v = current.view;
      return { left: r.left, top: r.top, width: r.width, height: r.height, zoom: v.zoom, panX: v.panX, panY: v.panY, dpr: dpr };
    },
    item: function () {
      if (!current || !current.prepared) return null;
      return { id: current.id, kind: current.kind, width: current.W, height: current.H, instances: current.instances.length,
        active: current.active ? current.instances.indexOf(current.active) : -1, undo: current.undo.length, redo: current.redo.length,
        decodeMs: current.decodeMs };
    },
    lastFrameMs: function () { return lastFrameMs; },
    brushSize: function () { return brushSize; },
    renew: renewAll,
    saved: function () { return savedCount; },
    frames: frames
  };

  setTool("brush");
  setBrush(brushSize);
  setOpacity(opacity);
  setShow(true);
  if (window.ResizeObserver) new ResizeObserver(resize).observe(stage);
  else window.addEventListener("resize", resize);
  resize();
  loadLabels();
  waiting("Loading the next image…");
  lastRenew = Date.now();
  fill();
})();

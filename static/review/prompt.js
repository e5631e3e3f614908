// The click tool (C): prompts for the interactive segmenter
// (POST /api/v1/review/{item}/segment). A click adds an object point,
// Alt- or Shift-click a background point, a drag draws a box; each prompt
// sends every point of the session with the box, and the answer is shown
// at once as a preview. Enter keeps it: as a new instance (label picked as
// for N), or, when the session began on a selected instance, as that
// instance's new mask (the instance is sent along, to be refined). While a
// session is open Ctrl+Z takes back its last prompt; a kept result is an
// ordinary edit on the item's undo list. A new prompt aborts the one in
// flight, so the reviewer never waits for an answer they did not ask for.

import { api, errorText } from "review/api.js";
import { request } from "review/draw.js";
import { insertInstance, select } from "review/instances.js";
import { Instance, buildLo, cropOf } from "review/item.js";
import { displayName } from "review/labels.js";
import { updateRow } from "review/list.js";
import { say } from "review/messages.js";
import { openPicker } from "review/picker.js";
import { beginEdit, ensureCover, finishEdit, touch } from "review/pixels.js";
import { state, stage } from "review/state.js";
import { pushUndo } from "review/undo.js";
import { toImage } from "review/view.js";
import * as RLE from "rle.js";

const DRAG_PX = 5;               // a pointer moved less than this (screen pixels) is a click
// NEW_COLOR is the preview's colour for a new instance (amber; the
// layers' pixels are RGBA bytes read as one little-endian word).
const NEW_COLOR = 0xff00c4ff;

// session is the prompting under way, or null: the item, the instance it
// refines (or null for a new one), its steps (each {points, box}, with the
// preview the server gave for it), the steps taken back, and the request
// in flight.
let session = null;
let drag = null;                 // the pointer pressed with the click tool
let seq = 0;                     // numbers the requests, so a late answer is dropped
let aborted = 0;                 // requests aborted by a newer prompt, for the test hook

// timings are, for the benchmark, the milliseconds from each prompt's
// pointer release to its mask drawn, and whether it was the item's first.
export const timings = [];

function open(item) {
  if (session && session.item === item) return session;
  cancelPrompt();
  const target = item.active && item.active.status !== "rejected" && !item.active.hidden ? item.active : null;
  session = { item, target, steps: [], undone: [], inFlight: null, keepWhenReady: false, lastSent: null, lastAnswer: null, instance: null };
  if (target) {
    const crop = cropOf(item, target);
    if (RLE.area(crop)) session.instance = { size: [item.H, item.W], counts: RLE.encode(crop, item.W, item.H) };
  }
  return session;
}

// cancelPrompt drops the session: its preview, its points, and the request
// in flight.
export function cancelPrompt() {
  if (!session) return;
  if (session.inFlight) session.inFlight.controller.abort();
  session = null;
  request("prompt");
  request("ui");
}

export function promptOpen() { return !!session; }

// promptPreview is what the prompt layer shows: the last answered step's
// mask, in the colour of the instance it refines.
export function promptPreview(item) {
  if (!session || session.item !== item) return null;
  const last = lastStep();
  if (!last || !last.preview) return null;
  return { crop: last.preview.crop, color: session.target ? session.target.color.px : NEW_COLOR, refining: !!session.target };
}

function lastStep() { return session && session.steps.length ? session.steps[session.steps.length - 1] : null; }

// promptDown starts a click or a drag with the click tool.
export function promptDown(e, p) {
  const item = state.current;
  if (p.x < 0 || p.y < 0 || p.x >= item.W || p.y >= item.H) return;
  drag = { item, x: e.clientX, y: e.clientY, p, background: e.altKey || e.shiftKey, moved: false, pointerId: e.pointerId };
  try { stage.setPointerCapture(e.pointerId); } catch { /* synthetic pointer */ }
}

export function promptDragging() { return !!drag; }

export function promptCancelDrag() { drag = null; request("ui"); }

export function promptMove(e) {
  if (!drag || e.pointerId !== drag.pointerId) return;
  if (Math.abs(e.clientX - drag.x) >= DRAG_PX || Math.abs(e.clientY - drag.y) >= DRAG_PX) drag.moved = true;
  request("ui");
}

// promptUp ends the click or the drag: a point, or a box, is a new step.
export function promptUp(e) {
  if (!drag || e.pointerId !== drag.pointerId) return;
  const d = drag, item = d.item;
  drag = null;
  if (item !== state.current) return;
  const s = open(item), prev = lastStep();
  const points = prev ? prev.points.slice() : [];
  let box = prev ? prev.box : null;
  if (d.moved) {
    const q = toImage(e.clientX, e.clientY);
    const x1 = Math.max(0, Math.min(d.p.x, q.x)), y1 = Math.max(0, Math.min(d.p.y, q.y));
    const x2 = Math.min(item.W, Math.max(d.p.x, q.x)), y2 = Math.min(item.H, Math.max(d.p.y, q.y));
    if (x2 - x1 < 1 || y2 - y1 < 1) { request("ui"); return; }
    box = [round(x1), round(y1), round(x2), round(y2)];
  } else {
    points.push([round(d.p.x), round(d.p.y), d.background ? 0 : 1]);
  }
  if (!points.length && !box) return;
  s.steps.push({ points, box, preview: null });
  s.undone.length = 0;
  send(s, e.timeStamp);
  request("ui");
}

// round keeps a tenth of a pixel, down, so a point stays inside the image.
function round(v) { return Math.floor(v * 10) / 10; }

// send asks for the mask of the session's last step, aborting the request
// before it.
function send(s, startedAt) {
  const step = lastStep();
  if (s.inFlight) { s.inFlight.controller.abort(); aborted++; }
  const controller = new AbortController(), id = ++seq, item = s.item;
  const first = !item.prompted;
  item.prompted = true;
  s.inFlight = { controller, id, step };
  const body = {};
  if (step.points.length) body.points = step.points; // a box alone is a prompt
  if (step.box) body.box = step.box;
  if (s.instance) body.instance = s.instance;
  s.lastSent = body;
  api("POST", "/api/v1/review/" + encodeURIComponent(item.id) + "/segment", body, controller.signal).then((res) => {
    if (session !== s || !s.inFlight || s.inFlight.id !== id) return;
    s.inFlight = null;
    if (res.status === 200 && res.body && res.body.mask) {
      let crop;
      try {
        const m = res.body.mask;
        if (m.size[0] !== item.H || m.size[1] !== item.W) throw new Error("the mask's size differs from the image's");
        crop = RLE.decode(m).crop;
      } catch (err) {
        say("The segmenter's answer cannot be read: " + err.message, "error");
        return;
      }
      step.preview = { crop, score: res.body.score, drawn: false, startedAt, first };
      s.lastAnswer = res.body;
      request("prompt");
      if (s.keepWhenReady) keepPrompt();
      return;
    }
    s.keepWhenReady = false;
    if (res.status === 503) say("Click to segment is not available: " + errorText(res), "error");
    else if (res.status === 409) say("Your lease on this image has ended, so the click tool cannot segment it: " + errorText(res), "error");
    else say("The click was not segmented: " + errorText(res), "error");
  }, (err) => {
    if (err && err.name === "AbortError") return;
    if (session === s && s.inFlight && s.inFlight.id === id) {
      s.inFlight = null;
      say("No connection to the server; click again to retry.", "error");
    }
  });
}

// promptDrawn is called by the frame that drew the prompt layer, to time
// the answers from the click to the mask on screen.
export function promptDrawn(item) {
  const last = session && session.item === item ? lastStep() : null;
  if (!last || !last.preview || last.preview.drawn) return;
  last.preview.drawn = true;
  if (last.preview.startedAt === undefined) return; // shown again by an undo
  timings.push({ ms: performance.now() - last.preview.startedAt, first: last.preview.first });
  if (timings.length > 5000) timings.shift();
}

// keepPrompt (Enter) keeps the preview: as a new instance, its label
// picked as for N, or as the refined instance's new mask.
export function keepPrompt() {
  const s = session;
  if (!s) return false;
  const last = lastStep();
  if (s.inFlight) { s.keepWhenReady = true; say("Keeping the mask when it comes…"); return true; }
  if (!last || !last.preview) { cancelPrompt(); return false; }
  const crop = last.preview.crop, item = s.item, target = s.target;
  if (target && item.instances.indexOf(target) >= 0) {
    cancelPrompt();
    replacePixels(item, target, crop);
    say("Kept the new mask of " + displayName(target.label) + ". Ctrl+Z undoes it.");
    return true;
  }
  // The preview stays while the label is picked: closing the picker
  // without one leaves it, for Enter again.
  openPicker("Label of the new instance", (name) => {
    if (session === s) cancelPrompt();
    if (item !== state.current) return;
    const inst = new Instance(item, null);
    inst.label = name;
    inst.crop = copyCrop(crop);
    inst.edited = true;
    inst.area = RLE.area(crop);
    inst.lo = buildLo(item, inst.crop);
    const index = item.instances.length;
    insertInstance(item, inst, index);
    pushUndo(item, { type: "add", inst, index });
    select(item, inst);
    say("New " + displayName(name) + " from the click tool. Ctrl+Z undoes it.");
  });
  return true;
}

function copyCrop(c) { return { x: c.x, y: c.y, w: c.w, h: c.h, data: c.data.slice() }; }

// replacePixels makes crop the instance's mask, as one undoable edit.
function replacePixels(item, inst, crop) {
  const edit = beginEdit(item, inst), old = inst.crop;
  const boxes = [old, crop].filter((c) => c.w);
  if (!boxes.length) return;
  const x0 = Math.min(...boxes.map((c) => c.x)), y0 = Math.min(...boxes.map((c) => c.y));
  const x1 = Math.max(...boxes.map((c) => c.x + c.w - 1)), y1 = Math.max(...boxes.map((c) => c.y + c.h - 1));
  touch(edit, x0, y0, x1, y1);
  if (crop.w) ensureCover(item, inst, crop.x, crop.y, crop.x + crop.w - 1, crop.y + crop.h - 1);
  const c = inst.crop;
  c.data.fill(0);
  for (let x = 0; x < crop.w; x++) {
    c.data.set(crop.data.subarray(x * crop.h, (x + 1) * crop.h), (crop.x + x - c.x) * c.h + (crop.y - c.y));
  }
  finishEdit(edit);
  updateRow(item, inst);
  request("active");
}

// undoPrompt takes back the session's last prompt (Ctrl+Z while it is
// open), showing the answer before it again; redoPrompt puts it back.
export function undoPrompt() {
  const s = session;
  if (!s) return false;
  const step = s.steps.pop();
  if (s.inFlight && s.inFlight.step === step) { s.inFlight.controller.abort(); s.inFlight = null; }
  if (step) s.undone.push(step);
  if (!s.steps.length) { cancelPrompt(); return true; }
  const last = lastStep();
  if (!last.preview && !s.inFlight) send(s, undefined);
  request("prompt");
  request("ui");
  return true;
}

export function redoPrompt() {
  const s = session;
  if (!s || !s.undone.length) return false;
  const step = s.undone.pop();
  s.steps.push(step);
  if (!step.preview) send(s, undefined);
  request("prompt");
  request("ui");
  return true;
}

// drawPromptMarks draws the session's points (object white on green,
// background white on red) and box, and the box being dragged, on the ui
// layer; grow notes what it drew.
export function drawPromptMarks(ctx, item, grow) {
  const v = item.view, k = v.zoom * state.dpr;
  const toScreen = (x, y) => [(x - v.panX) * k, (y - v.panY) * k];
  const last = session && session.item === item ? lastStep() : null;
  let box = last ? last.box : null;
  if (drag && drag.item === item && drag.moved) {
    const q = toImage(state.pointer.x, state.pointer.y);
    box = [Math.min(drag.p.x, q.x), Math.min(drag.p.y, q.y), Math.max(drag.p.x, q.x), Math.max(drag.p.y, q.y)];
  }
  if (box) {
    const [ax, ay] = toScreen(box[0], box[1]), [bx, by] = toScreen(box[2], box[3]);
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#000";
    ctx.strokeRect(ax, ay, bx - ax, by - ay);
    ctx.setLineDash([5, 4]);
    ctx.strokeStyle = "#fff";
    ctx.strokeRect(ax, ay, bx - ax, by - ay);
    ctx.setLineDash([]);
    grow(ax, ay, bx, by);
  }
  if (!last) return;
  const r = 5 * state.dpr;
  for (const [x, y, label] of last.points) {
    const [sx, sy] = toScreen(x, y);
    ctx.beginPath();
    ctx.arc(sx, sy, r, 0, 2 * Math.PI);
    ctx.fillStyle = label ? "#1f9d55" : "#d64545";
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#fff";
    ctx.stroke();
    grow(sx - r, sy - r, sx + r, sy + r);
  }
}

// promptState is, for the test hook, how the session stands.
export function promptState() {
  if (!session) return null;
  const last = lastStep();
  return {
    points: last ? last.points.length : 0, box: last ? last.box : null, refining: !!session.target,
    inFlight: !!session.inFlight, preview: last && last.preview ? RLE.area(last.preview.crop) : -1,
    lastSent: session.lastSent, lastAnswer: session.lastAnswer, aborted,
  };
}

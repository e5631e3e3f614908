// Review screen (GET /review): leases items through the review API
// (../shared/API.md), shows the photo with every proposal overlaid, and edits
// masks at the photo's full resolution. Masks go back as COCO RLE written by
// rle.js. The reviewer never waits on the server: the next item is leased and
// prepared while this one is worked on, and a submission is sent in the
// background while the next item is already on screen.
//
// Each concern is a module of its own, named by the page's import map
// (static.ImportMap): state.js (the shared state and the page's elements),
// item.js (items, instances, masks at review size), draw.js and view.js
// (canvases, zoom and pan), pixels.js, brush.js and polygon.js (editing
// masks), prompt.js (the click tool), undo.js, instances.js and list.js
// (selection, verdicts, the list), picker.js (labels), controls.js,
// keyboard.js and pointer.js (input), messages.js, queue.js and lease.js
// (the server's queue). Masks are encoded only on submit, and only the
// edited ones: an untouched proposal goes back with its own counts.

import { wireControls, setBrush, setOpacity, setShow, setTool } from "review/controls.js";
import { wireKeyboard } from "review/keyboard.js";
import { loadLabels } from "review/labels.js";
import { wireLeases } from "review/lease.js";
import { wireList } from "review/list.js";
import { waiting } from "review/messages.js";
import { wirePicker } from "review/picker.js";
import { wirePointer } from "review/pointer.js";
import { fill, queue } from "review/queue.js";
import { $, app, stage, state, toolbar } from "review/state.js";
import { resize } from "review/view.js";

function start() {
  $("review-nojs").hidden = true;
  toolbar.hidden = false;
  stage.hidden = false;
  $("review-side").hidden = false;
  wireList();
  wirePicker();
  wireControls();
  wireKeyboard();
  wirePointer();
  wireLeases();
  setTool("brush");
  setBrush(state.brushSize);
  setOpacity(state.opacity);
  setShow(true);
  new ResizeObserver(resize).observe(stage);
  resize();
  loadLabels();
  waiting("Loading the next image…");
  queue.lastRenew = Date.now();
  fill();
  // The browser tests ask for their hook before the page loads (see
  // browsertest.ExposeHooks); other visitors never load it.
  if (window.imagehubTestHooks === true) import("review/hook.js").then((m) => m.expose());
}

if (app && stage) start();

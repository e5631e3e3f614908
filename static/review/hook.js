// The browser tests' hook: window.imagehubReview lets them read what the
// page shows and how long its frames took, and renew the leases without
// waiting a minute. main.js loads this module only when a test asked for
// it (window.imagehubTestHooks, set by browsertest.ExposeHooks before the
// page's scripts run).

import { frames, lastFrame } from "review/draw.js";
import { renewAll } from "review/lease.js";
import { promptState, timings } from "review/prompt.js";
import { queue } from "review/queue.js";
import { state, stage } from "review/state.js";

export function expose() {
  window.imagehubReview = {
    view() {
      const current = state.current;
      if (!current || !current.view) return null;
      const r = stage.getBoundingClientRect(), v = current.view;
      return { left: r.left, top: r.top, width: r.width, height: r.height, zoom: v.zoom, panX: v.panX, panY: v.panY, dpr: state.dpr };
    },
    item() {
      const current = state.current;
      if (!current || !current.prepared) return null;
      return {
        id: current.id, kind: current.kind, width: current.W, height: current.H, instances: current.instances.length,
        active: current.active ? current.instances.indexOf(current.active) : -1, undo: current.undo.length, redo: current.redo.length,
        decodeMs: current.decodeMs,
      };
    },
    lastFrameMs: lastFrame,
    brushSize() { return state.brushSize; },
    opacity() { return state.opacity; },
    renew: renewAll,
    saved() { return queue.savedCount; },
    frames,
    prompt: promptState,
    promptTimings: timings,
  };
}

// The pointer on the stage: tools, panning, zooming with the wheel.

import { startStroke } from "review/brush.js";
import { request, requestView, schedule } from "review/draw.js";
import { hitTest, select, setHover } from "review/instances.js";
import { closePicker } from "review/picker.js";
import { polygonClick } from "review/polygon.js";
import { promptCancelDrag, promptDown, promptDragging, promptMove, promptUp } from "review/prompt.js";
import { state, stage } from "review/state.js";
import { toImage, zoomAt } from "review/view.js";

function pointerEnd(e) {
  if (promptDragging()) { if (e.type === "pointerup") promptUp(e); else promptCancelDrag(); }
  if (state.pan) {
    state.pan = null;
    stage.classList.remove("panning");
    request("ui");
  }
  if (state.stroke && e.pointerId === state.stroke.pointerId) {
    state.stroke.queue.push(toImage(e.clientX, e.clientY));
    state.stroke.ended = true;
    schedule();
  }
}

// wirePointer handles the pointer on the stage.
export function wirePointer() {
  stage.addEventListener("pointerdown", function (e) {
    const item = state.current;
    if (!item || !item.prepared || !item.view) return;
    if (state.pick) closePicker();
    state.pointer.x = e.clientX; state.pointer.y = e.clientY; state.pointer.inside = true;
    if (e.button === 1 || (e.button === 0 && state.spaceDown)) {
      e.preventDefault();
      state.pan = { x: e.clientX, y: e.clientY, panX: item.view.panX, panY: item.view.panY };
      stage.classList.add("panning");
      try { stage.setPointerCapture(e.pointerId); } catch (err) { /* synthetic pointer */ }
      return;
    }
    if (e.button !== 0) return;
    e.preventDefault();
    const p = toImage(e.clientX, e.clientY);
    if (state.tool === "select") select(item, hitTest(item, p.x, p.y));
    else if (state.tool === "polygon") polygonClick(e, p);
    else if (state.tool === "click") promptDown(e, p);
    else startStroke(e, p);
  });

  stage.addEventListener("pointermove", function (e) {
    const item = state.current;
    if (!item || !item.prepared || !item.view) return;
    state.pointer.x = e.clientX; state.pointer.y = e.clientY; state.pointer.inside = true;
    if (state.pan) {
      const v = item.view;
      v.panX = state.pan.panX - (e.clientX - state.pan.x) / v.zoom;
      v.panY = state.pan.panY - (e.clientY - state.pan.y) / v.zoom;
      v.moved = true;
      requestView();
      return;
    }
    if (promptDragging()) { promptMove(e); return; }
    if (state.stroke && e.pointerId === state.stroke.pointerId) {
      let evs = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      if (!evs.length) evs = [e];
      for (let i = 0; i < evs.length; i++) state.stroke.queue.push(toImage(evs[i].clientX, evs[i].clientY));
      schedule();
      return;
    }
    const p = toImage(e.clientX, e.clientY);
    setHover(item, hitTest(item, p.x, p.y));
    if (state.tool !== "select") request("ui");
  });

  stage.addEventListener("pointerup", pointerEnd);
  stage.addEventListener("pointercancel", pointerEnd);
  stage.addEventListener("pointerleave", function () {
    state.pointer.inside = false;
    if (state.current && state.current.prepared && !state.stroke) { setHover(state.current, null); request("ui"); }
  });
  stage.addEventListener("contextmenu", function (e) { e.preventDefault(); });
  stage.addEventListener("mousedown", function (e) { if (e.button === 1) e.preventDefault(); }); // no autoscroll
  stage.addEventListener("wheel", function (e) {
    if (!state.current || !state.current.prepared || !state.current.view) return;
    e.preventDefault();
    const r = stage.getBoundingClientRect();
    const dy = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaMode === 2 ? e.deltaY * 400 : e.deltaY;
    zoomAt(e.clientX - r.left, e.clientY - r.top, Math.pow(2, -dy / 300));
  }, { passive: false });
}

// The toolbar: tools, brush size, opacity, showing the masks.

import { request } from "review/draw.js";
import { addInstance } from "review/instances.js";
import { submit } from "review/queue.js";
import { cancelPrompt } from "review/prompt.js";
import { state, layers, opacityInput, opacityLabel, showInput, sizeLabel, stage, toolbar } from "review/state.js";
import { redo, undo } from "review/undo.js";

export function setTool(t) {
  if (t !== "click") cancelPrompt();
  if (state.poly && t !== "polygon") { state.poly = null; }
  state.tool = t;
  Array.prototype.forEach.call(toolbar.querySelectorAll("[data-tool]"), function (b) {
    b.setAttribute("aria-pressed", String(b.dataset.tool === t));
  });
  stage.dataset.tool = t;
  if (state.current) request("ui");
}

export function setBrush(s) {
  state.brushSize = Math.max(1, Math.min(500, Math.round(s)));
  sizeLabel.textContent = state.brushSize + " px";
  if (state.current) request("ui");
}

// setOpacity sets how opaque the masks are, in whole percents, and shows
// the figure beside the slider (the zoom has a label of its own).
export function setOpacity(o) {
  const pct = Math.round(Math.max(0, Math.min(1, o)) * 100);
  state.opacity = pct / 100;
  opacityInput.value = String(pct);
  opacityLabel.textContent = pct + "%";
  for (const k of ["others", "active", "prompt"]) layers[k].canvas.style.opacity = String(state.opacity);
}

export function setShow(on) {
  state.showMasks = on;
  showInput.checked = on;
  for (const k of ["others", "active", "prompt"]) layers[k].canvas.style.visibility = on ? "" : "hidden";
  if (state.current) request("ui");
}

// wireControls handles the toolbar's buttons and inputs.
export function wireControls() {
  toolbar.addEventListener("click", function (e) {
    const b = e.target.closest("button");
    if (!b) return;
    if (b.dataset.tool) setTool(b.dataset.tool);
    else if (b.id === "review-add" && state.current && state.current.prepared) addInstance(state.current);
    else if (b.id === "review-undo") undo();
    else if (b.id === "review-redo") redo();
    else if (b.id === "review-submit") submit();
    if (b.id !== "review-add") b.blur();
  });
  opacityInput.addEventListener("input", function () { setOpacity(Number(opacityInput.value) / 100); });
  opacityInput.addEventListener("change", function () { opacityInput.blur(); });
  showInput.addEventListener("change", function () { setShow(showInput.checked); showInput.blur(); });
}

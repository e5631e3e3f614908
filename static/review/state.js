// The review screen's page elements and the editor state every part of it
// shares. State that one module alone changes lives in that module; what
// several read or write is here, in one object, because an imported
// binding cannot be assigned by the importer.

export const $ = (id) => document.getElementById(id);

export const app = $("review-app");
export const stage = $("review-stage");
export const overlay = $("review-overlay");
export const list = $("review-instances");
export const itemInfo = $("review-item");
export const messageBox = $("review-message");
export const toolbar = $("review-toolbar");
export const sizeLabel = $("review-size");
export const zoomLabel = $("review-zoom");
export const opacityInput = $("review-opacity");
export const opacityLabel = $("review-opacity-value");
export const showInput = $("review-show");
export const help = $("review-help");
export const picker = $("review-picker");
export const pickerInput = $("review-picker-input");
export const pickerList = $("review-picker-list");

// layers are the stage's canvases by their data-layer: image, others
// (every unselected mask), active (the selected one), prompt (the click
// tool's preview) and ui (hover, polygon, brush outline, prompt points).
export const layers = {};
if (stage) {
  for (const c of stage.querySelectorAll("canvas")) layers[c.dataset.layer] = { canvas: c, ctx: c.getContext("2d") };
}

export const state = {
  current: null,      // the item on screen
  tool: "brush",      // select, brush, eraser, polygon, click
  brushSize: 16,
  opacity: 0.5,
  showMasks: true,
  cssW: 0, cssH: 0, dpr: 1,
  pointer: { inside: false, x: 0, y: 0 }, // client coordinates
  stroke: null,       // the brush or eraser stroke under way
  pan: null,          // the pan under way
  poly: null,         // the polygon being drawn
  pick: null,         // the open label picker
  spaceDown: false,
};

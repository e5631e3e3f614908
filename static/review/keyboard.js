// Keyboard shortcuts (views/review.templ lists them for the help panel).

import { setBrush, setOpacity, setShow, setTool } from "review/controls.js";
import { request, requestView } from "review/draw.js";
import { addInstance, cycle, relabel, select, setVerdict, toggleHidden } from "review/instances.js";
import { closePolygon } from "review/polygon.js";
import { cancelPrompt, keepPrompt, promptOpen, redoPrompt, undoPrompt } from "review/prompt.js";
import { submit } from "review/queue.js";
import { state, help, stage } from "review/state.js";
import { redo, undo } from "review/undo.js";
import { fitView, zoomAt, zoomTo100 } from "review/view.js";

export function typing(t) {
  if (!t || !t.tagName) return false;
  return t.tagName === "TEXTAREA" || t.tagName === "SELECT" || (t.tagName === "INPUT" && t.type !== "range" && t.type !== "checkbox");
}

// wireKeyboard handles the shortcuts.
export function wireKeyboard() {
  document.addEventListener("keydown", function (e) {
    if (state.pick || typing(e.target)) return;
    const item = state.current, ready = item && item.prepared, key = e.key;
    if (e.ctrlKey || e.metaKey) {
      // With a click-tool session open, undo and redo take its prompts.
      if (key === "z" || key === "Z") { e.preventDefault(); if (e.shiftKey) { if (!redoPrompt()) redo(); } else if (!undoPrompt()) undo(); }
      else if (key === "y" || key === "Y") { e.preventDefault(); if (!redoPrompt()) redo(); }
      return;
    }
    if (e.altKey) return;
    const tag = e.target && e.target.tagName;
    if ((tag === "A" || tag === "SUMMARY") && (key === "Enter" || key === " ")) return; // follow the link, open the help
    if (tag === "BUTTON" && (key === "Enter" || key === " ")) e.preventDefault(); // the shortcut, not a click as well
    switch (key) {
    case "?": help.open = !help.open; if (help.open) help.scrollIntoView({ block: "nearest" }); break;
    case " ": state.spaceDown = true; stage.classList.add("grab"); break;
    case "Enter":
      if (state.poly) closePolygon();
      else if (promptOpen()) { if (!e.repeat && !keepPrompt()) submit(); }
      else if (!e.repeat) submit(); // a held Enter must not clear the queue
      break;
    case "Tab": if (!ready) return; cycle(e.shiftKey ? -1 : 1); break;
    case "a": case "A": if (!ready || !item.active) return; setVerdict(item, item.active, "accepted"); if (item.active && item.active.status === "accepted") cycle(1); break;
    case "x": case "X": case "Delete": {
      if (!ready || !item.active) return;
      const was = item.active;
      setVerdict(item, was, "rejected");
      if (item.active === was && was.status === "rejected") cycle(1);
      break;
    }
    case "Backspace":
      if (promptOpen()) { undoPrompt(); break; }
      if (!state.poly) return;
      state.poly.points.pop();
      if (!state.poly.points.length) state.poly = null;
      request("ui");
      break;
    case "l": case "L": if (ready) relabel(item, item.active); break;
    case "n": case "N": if (ready) addInstance(item); break;
    case "v": case "V": setTool("select"); break;
    case "b": case "B": setTool("brush"); break;
    case "e": case "E": setTool("eraser"); break;
    case "p": case "P": setTool("polygon"); break;
    case "c": case "C": setTool("click"); break;
    case "[": setBrush(state.brushSize < 10 ? state.brushSize - 1 : state.brushSize / 1.25); break;
    case "]": setBrush(state.brushSize < 8 ? state.brushSize + 1 : state.brushSize * 1.25); break;
    case "h": case "H":
      if (e.shiftKey) { if (ready) toggleHidden(item, item.active); } // Shift+H: the selected instance
      else setShow(!state.showMasks);
      break;
    case ",": setOpacity(state.opacity - 0.1); break;
    case ".": setOpacity(state.opacity + 0.1); break;
    case "+": case "=": if (ready) zoomAt(state.cssW / 2, state.cssH / 2, 1.25); break;
    case "-": case "_": if (ready) zoomAt(state.cssW / 2, state.cssH / 2, 0.8); break;
    case "0": if (ready) { fitView(item); requestView(); } break;
    case "1": if (ready) zoomTo100(); break;
    case "Escape":
      if (state.poly) { state.poly = null; request("ui"); }
      else if (promptOpen()) cancelPrompt();
      else if (help.open) help.open = false;
      else if (ready) select(item, null);
      break;
    default: return;
    }
    e.preventDefault();
  });
  document.addEventListener("keyup", function (e) {
    if (state.pick) state.pick.guard = false;
    if (e.key === " ") { state.spaceDown = false; stage.classList.remove("grab"); }
  });
  window.addEventListener("blur", function () { state.spaceDown = false; stage.classList.remove("grab"); });
}

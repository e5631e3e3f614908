// The queue: one item leased ahead of the one on screen, prepared while
// this one is worked on, and submissions sent in the background, in order,
// retried until the server answers.

import { api, errorText } from "review/api.js";
import { flushStroke } from "review/brush.js";
import { clearLayers, requestView, resetUI } from "review/draw.js";
import { select } from "review/instances.js";
import { Item, cropOf } from "review/item.js";
import { buildList } from "review/list.js";
import { describe, say, waiting } from "review/messages.js";
import { closePolygon } from "review/polygon.js";
import { cancelPrompt } from "review/prompt.js";
import { state, app, itemInfo, list, messageBox } from "review/state.js";
import * as RLE from "rle.js";
import { updateUndoButtons } from "review/undo.js";
import { fitView } from "review/view.js";

const POLL_MS = 30000; // how often an empty queue is asked again

// queue is what the page holds: the items leased ahead, the submissions
// not yet answered, and how the leasing and saving stand.
export const queue = {
  ahead: [],        // items leased and being prepared, next first
  saving: [],       // submissions not yet answered, oldest first
  saveBusy: false,
  savedCount: 0,
  leasing: false,
  pollTimer: 0,
  lastRenew: 0,
};

// filter narrows the queue as the page's ?label= and ?campaign_id= say.
const filter = {};
if (app.dataset.label) filter.label = app.dataset.label;
if (app.dataset.campaign) filter.campaign_id = app.dataset.campaign;

export function show(item) {
  cancelPrompt();
  state.current = item;
  state.stroke = null; state.poly = null; state.pan = null;
  say("");
  list.textContent = "";
  itemInfo.textContent = "";
  app.dataset.item = "";
  updateUndoButtons();
  if (!item.prepared) {
    waiting("Loading the image…");
    item.ready.then(function () { if (state.current === item) present(item); });
    return;
  }
  present(item);
}

export function present(item) {
  waiting("");
  if (!item.view) fitView(item);
  item.shownAt = performance.now();
  buildList(item);
  describe(item);
  item.othersDirty = "all";
  resetUI();
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
export function fill() {
  if (queue.leasing || queue.pollTimer) return;
  if (!state.current && queue.ahead.length) { show(queue.ahead.shift()); return; }
  if (state.current && queue.ahead.length) return;
  queue.leasing = true;
  api("POST", "/api/v1/review/next", filter).then(function (res) {
    queue.leasing = false;
    if (res.status === 200 && res.body && res.body.item_id) {
      const item = new Item(res.body);
      if (!state.current) show(item);
      else { queue.ahead.push(item); }
      return;
    }
    if (res.status === 204) {
      if (!state.current) {
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
    queue.leasing = false;
    say("No connection to the server; trying again shortly.", "error");
    later(5000);
  });
}

export function later(ms) {
  queue.pollTimer = setTimeout(function () { queue.pollTimer = 0; fill(); }, ms);
}

export function submit() {
  const item = state.current;
  if (!item || !item.prepared) return;
  if (item.state === "lost") { advance(); return; }
  if (item.state !== "open") return;
  flushStroke();
  if (state.poly) closePolygon();
  let out;
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
  queue.saving.push({ item: item, body: out.body, index: out.index, tries: 0, notBefore: 0 });
  pumpSaves();
  advance();
}

export function advance() {
  state.current = null;
  const next = queue.ahead.shift();
  if (queue.pollTimer && !next) { clearTimeout(queue.pollTimer); queue.pollTimer = 0; }
  if (next) show(next);
  else { list.textContent = ""; itemInfo.textContent = ""; clearLayers(); waiting("Loading the next image…"); fill(); }
}


// payloadOf builds the submission: untouched proposals with their own
// counts, edited masks encoded now; an instance erased to nothing is a
// rejected proposal, or left out when it was new.
export function payloadOf(item) {
  const instances = [], rejected = [], index = [];
  item.instances.forEach(function (inst) {
    if (inst.status === "rejected") {
      if (inst.proposalId) rejected.push(inst.proposalId);
      return;
    }
    let counts = inst.counts;
    if (inst.edited || !counts) {
      const crop = cropOf(item, inst);
      if (!RLE.area(crop)) {
        if (inst.proposalId) rejected.push(inst.proposalId);
        return;
      }
      counts = RLE.encode(crop, item.W, item.H);
    }
    const one = { label: inst.label, mask: { size: [item.H, item.W], counts: counts } };
    if (inst.proposalId) one.proposal_id = inst.proposalId;
    instances.push(one);
    index.push(inst);
  });
  return { body: { instances: instances, rejected_proposals: rejected }, index: index };
}

// pumpSaves sends the submissions one at a time, retrying what failed
// for want of a server; nothing submitted is dropped silently.
export function pumpSaves() {
  if (queue.saveBusy || !queue.saving.length) return;
  const s = queue.saving[0], wait = s.notBefore - Date.now();
  if (wait > 0) { setTimeout(pumpSaves, wait); return; }
  queue.saveBusy = true;
  api("POST", "/api/v1/review/" + encodeURIComponent(s.item.id), s.body).then(function (res) {
    queue.saveBusy = false;
    if (res.status === 200) {
      queue.saving.shift();
      s.item.state = "saved";
      queue.savedCount++;
      app.dataset.saved = String(queue.savedCount);
      if (!messageBox.classList.contains("error")) say(queue.savedCount === 1 ? "Saved." : "Saved " + queue.savedCount + " reviews.");
    } else if (res.status === 409) {
      queue.saving.shift();
      s.item.state = "lost";
      say("Your review of an earlier image was not saved: " + errorText(res), "error");
    } else if (res.status >= 400 && res.status < 500 && res.status !== 401 && res.status !== 408 && res.status !== 429) {
      queue.saving.shift();
      s.item.state = "open";
      const err = res.body && res.body.error ? res.body.error : {};
      s.item.error = { message: errorText(res), field: err.field || "", inst: instanceOfField(s, err.field || "") };
      bringBack(s.item);
    } else {
      retry(s, res);
    }
    pumpSaves();
  }, function () {
    queue.saveBusy = false;
    retry(s, null);
    pumpSaves();
  });
}

export function retry(s, res) {
  s.tries++;
  const delay = Math.min(30000, 1000 * Math.pow(2, s.tries - 1));
  s.notBefore = Date.now() + delay;
  const why = !res ? "no connection" : res.status === 401 ? "you are signed out; sign in again in another tab" : "the server answered " + res.status;
  say("Saving your last review failed (" + why + "); trying again in " + Math.round(delay / 1000) + " s. Nothing is lost.", "error");
}

export function instanceOfField(s, field) {
  let m = /^instances\[(\d+)\]/.exec(field);
  if (m) return s.index[Number(m[1])] || null;
  m = /^rejected_proposals\[(\d+)\]/.exec(field);
  if (m) {
    const id = s.body.rejected_proposals[Number(m[1])];
    for (let i = 0; i < s.item.instances.length; i++) if (s.item.instances[i].proposalId === id) return s.item.instances[i];
  }
  return null;
}

// bringBack puts a refused submission back on screen, the item it
// replaced waiting ahead, so the reviewer can fix what the server named.
export function bringBack(item) {
  if (state.current && state.current !== item) {
    state.current.spent += performance.now() - state.current.shownAt;
    queue.ahead.unshift(state.current);
  }
  show(item);
}

export function showItemError(item) {
  const e = item.error;
  say("The server refused this review: " + e.message + " Fix it and press Enter again.", "error");
  if (e.inst && item.instances.indexOf(e.inst) >= 0) {
    select(item, e.inst);
    if (e.inst.row) e.inst.row.li.classList.add("invalid");
  }
}

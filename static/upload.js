// Upload page: drag and drop, one request per file with its own progress bar,
// and each file's outcome shown in place. Without JavaScript the form posts
// all files at once and the server renders the outcomes.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form || !window.XMLHttpRequest || !window.FormData) return;
  var input = document.getElementById("files");
  var zone = document.getElementById("dropzone");
  var list = document.getElementById("upload-results");
  var csrf = document.querySelector('meta[name="csrf-token"]').content;
  var queue = [];

  ["dragenter", "dragover"].forEach(function (ev) {
    zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (ev) {
    zone.addEventListener(ev, function (e) { e.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (e) {
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
    }
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var files = Array.prototype.slice.call(input.files);
    if (!files.length) return;
    files.forEach(function (f) { queue.push({ file: f, row: addRow(f.name) }); });
    input.value = "";
    // Two at a time: quick on a phone, and progress stays readable.
    pump(); pump();
  });

  function addRow(name) {
    var li = document.createElement("li");
    li.className = "upload-item uploading";
    var n = document.createElement("span"); n.className = "name"; n.textContent = name;
    var bar = document.createElement("progress"); bar.max = 100; bar.value = 0;
    var badge = document.createElement("span"); badge.className = "badge"; badge.textContent = "uploading";
    var reason = document.createElement("span"); reason.className = "reason";
    li.appendChild(n); li.appendChild(bar); li.appendChild(badge); li.appendChild(reason);
    list.insertBefore(li, list.firstChild);
    return { li: li, bar: bar, badge: badge, reason: reason };
  }

  function pump() {
    var item = queue.shift();
    if (!item) return;
    var data = new FormData();
    data.append("files", item.file, item.file.name);
    data.append("labels", document.getElementById("labels").value);
    var camp = document.getElementById("campaign_id");
    if (camp && camp.value) data.append("campaign_id", camp.value);

    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/v1/images");
    xhr.setRequestHeader("X-CSRF-Token", csrf);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.onprogress = function (ev) {
      if (ev.lengthComputable) item.row.bar.value = Math.round(ev.loaded * 100 / ev.total);
    };
    xhr.onload = function () {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { /* shown below */ }
      var r = body && body.results && body.results[0];
      if (r) {
        show(item, r.status, r.error ? r.error.message : (r.status === "duplicate" ? "Already here; your labels were added." : "Stored; checking it now."));
        if (r.image && r.image.id) follow(item, r.image.id, 0);
      } else if (body && body.error) {
        show(item, "refused", body.error.message);
      } else {
        show(item, "refused", "The server answered " + xhr.status + ".");
      }
      pump();
    };
    xhr.onerror = function () { show(item, "refused", "The connection dropped; please try this one again."); pump(); };
    xhr.send(data);
  }

  // What a contributor reads of each state of a photo (package lifecycle).
  var stateText = {
    awaiting_inference: "Checked: waiting for the model to propose masks.",
    awaiting_review: "Checked: masks proposed, waiting for a reviewer.",
    reviewed: "Reviewed: it is in the next dataset.",
    flagged: null, rejected: null, failed: null // their reason says why
  };

  // follow asks for the photo's state until ingest has decided, backing
  // off from one second, so that the row says what became of it.
  function follow(item, id, tries) {
    var xhr = new XMLHttpRequest();
    xhr.open("GET", "/api/v1/images/" + encodeURIComponent(id));
    xhr.setRequestHeader("Accept", "application/json");
    xhr.onload = function () {
      var img = null;
      try { img = JSON.parse(xhr.responseText); } catch (err) { /* try again */ }
      if (img && img.status && img.status !== "uploaded" && img.status !== "processing") {
        item.row.li.dataset.state = img.status;
        item.row.li.classList.add("checked");
        item.row.badge.textContent = img.status.replace(/_/g, " ");
        item.row.reason.textContent = stateText[img.status] || img.reason || "";
        return;
      }
      if (tries < 60) setTimeout(function () { follow(item, id, tries + 1); }, Math.min(1000 * (1 + tries / 5), 5000));
    };
    xhr.onerror = function () {
      if (tries < 60) setTimeout(function () { follow(item, id, tries + 1); }, 5000);
    };
    xhr.send();
  }

  function show(item, status, message) {
    var row = item.row;
    row.bar.value = 100;
    row.bar.hidden = true;
    row.li.className = "upload-item " + status;
    row.badge.className = "badge " + status;
    row.badge.textContent = status;
    row.reason.textContent = message || "";
  }
})();

/* The case page's uploader, tolerant of a bad connection (docs/web.md, "Capture without a connection").

   Every file chosen or photographed is first written to IndexedDB on this device, with the fields typed for
   it, and only then sent. A file stays there until the server has said it holds it, so it survives a reload,
   a closed tab or a dropped connection; it is sent again on its own when the connection returns (the "online"
   event, and retries with a growing wait). Each file carries one Idempotency-Key from the moment it is queued,
   so a retry of an upload whose answer was lost gets the first answer back instead of a second image.
   The service worker (/sw.js) keeps a copy of this page so that it opens again offline.

   Entry states, kept in IndexedDB:  chosen  (fields still being set; sent on "Upload all")
                                     queued  (sent automatically until the server answers)
                                     refused (the server said no: fix the fields and retry, or remove)
   A row's data-state on the page: ready | waiting | sending | done | failed. */
(function () {
  "use strict";

  var DB_NAME = "referral-capture";
  var STORE = "queue";
  var PAGES = "referral-capture-pages-v1";  // the service worker's cache (static/sw.js)
  var PARALLEL = 2;
  var FIRST_WAIT = 2000;
  var LONGEST_WAIT = 60000;

  function meta(name) {
    var element = document.querySelector('meta[name="' + name + '"]');
    return element ? element.getAttribute("content") : "";
  }

  // -- IndexedDB: one store of entries, keyed by their Idempotency-Key ----------------------------------------
  var dbPromise = null;
  function openDb() {
    if (dbPromise) return dbPromise;
    dbPromise = new Promise(function (resolve, reject) {
      if (!window.indexedDB) { reject(new Error("no IndexedDB")); return; }
      var request = window.indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () {
        var store = request.result.createObjectStore(STORE, { keyPath: "key" });
        store.createIndex("owner", "owner");
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
      request.onblocked = function () { reject(new Error("IndexedDB blocked")); };
    });
    return dbPromise;
  }

  function transact(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result;
        tx.oncomplete = function () { resolve(result); };
        tx.onerror = function () { reject(tx.error); };
        tx.onabort = function () { reject(tx.error || new Error("aborted")); };
        work(tx.objectStore(STORE), function (value) { result = value; });
      });
    });
  }

  function stored(entry) {
    return { key: entry.key, owner: entry.owner, referral: entry.referral, name: entry.name, type: entry.type,
             size: entry.size, blob: entry.blob, fields: entry.fields, state: entry.state,
             error: entry.error || null, added: entry.added };
  }
  function dbPut(entry) { return transact("readwrite", function (store) { store.put(stored(entry)); }); }
  function dbDelete(key) { return transact("readwrite", function (store) { store.delete(key); }); }
  function dbByOwner(owner) {
    return transact("readonly", function (store, done) {
      var request = store.index("owner").getAll(owner);
      request.onsuccess = function () { done(request.result || []); };
    });
  }

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) return "capture-" + window.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return "capture-" + Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  function showRowErrors(region, message, details) {
    region.textContent = "";
    var heading = document.createElement("p");
    heading.className = "error";
    heading.textContent = message;
    region.appendChild(heading);
    if (details && details.length) {
      var list = document.createElement("ul");
      details.forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
      region.appendChild(list);
    }
    region.hidden = false;
  }

  function errorDetails(errors, out) {
    if (!errors) return out;
    if (typeof errors === "string") { out.push(errors); return out; }
    if (Array.isArray(errors)) { errors.forEach(function (e) { errorDetails(e, out); }); return out; }
    Object.keys(errors).forEach(function (key) {
      var inner = errorDetails(errors[key], []);
      var name = key === "form" || key === "files" || key === "json" ? "" : key.replace(/_/g, " ") + ": ";
      inner.forEach(function (text) { out.push(name + text); });
    });
    return out;
  }

  function initCaptureQueue(root) {
    var CSRF = meta("csrf-token");
    var owner = meta("draft-owner");
    var referral = root.dataset.referral;
    var input = root.querySelector("[data-file-input]");
    var camera = root.querySelector("[data-camera-input]");
    var rows = root.querySelector("[data-upload-rows]");
    var uploadAll = root.querySelector("[data-upload-all]");
    var summary = root.querySelector("[data-upload-summary]");
    var status = root.querySelector("[data-queue-status]");
    var warning = root.querySelector("[data-queue-warning]");
    var template = document.getElementById("upload-row-template");
    var sendButton = document.querySelector("[data-send-case]");
    var sendWait = document.querySelector("[data-send-wait]");
    var entries = [];
    var counter = 0;
    var sending = 0;
    var timer = null;
    var elsewhere = 0;
    var storageFailed = false;
    var uploadedSinceRedraw = 0;

    // -- rows -------------------------------------------------------------------------------------------------
    function field(entry, name) { return entry.row.querySelector('[data-field="' + name + '"]'); }

    function rowFields(entry) {
      var values = [];
      entry.row.querySelectorAll("[data-field]").forEach(function (f) {
        var value = f.value.trim();
        if (value) values.push([f.name, value]);
      });
      return values;
    }

    function addRow(entry, defaults) {
      var fragment = template.content.cloneNode(true);
      var row = fragment.querySelector("[data-upload-row]");
      var n = ++counter;
      entry.row = row;
      row.querySelectorAll("[data-field]").forEach(function (f) {
        var id = "u" + n + "-" + f.dataset.field;
        f.id = id;
        f.name = f.dataset.field;
        var label = row.querySelector('[data-for="' + f.dataset.field + '"]');
        if (label) label.setAttribute("for", id);
      });
      row.dataset.uploadIndex = String(n);
      row.dataset.key = entry.key;
      row.querySelector("[data-file-name]").textContent = entry.name + " · " + (entry.size / 1048576).toFixed(1) + " MB";
      var isDicom = /\.dcm$/i.test(entry.name) || !/\.[a-z0-9]+$/i.test(entry.name);
      if (isDicom) row.querySelector("[data-time-hint]").hidden = false;
      if (defaults) {
        field(entry, "teeth").value = root.dataset.teeth || "";
        field(entry, "reason").value = root.dataset.reason || "";
        // A DICOM file carries its own date and time: left empty, the server takes them from the file.
        if (!isDicom) field(entry, "captured_at").value = root.dataset.captured || "";
        if (root.dataset.provider) field(entry, "captured_by_provider_id").value = root.dataset.provider;
        if (/\.(jpe?g|png|heic|webp)$/i.test(entry.name) || /^image\/(jpeg|png)$/.test(entry.type)) {
          field(entry, "kind").value = "photo_intraoral";
        }
        entry.fields = rowFields(entry);
      } else {
        // Restored from this device: the fields exactly as they were kept (and as they will be sent).
        row.querySelectorAll("[data-field]").forEach(function (f) { f.value = ""; });
        entry.fields.forEach(function (pair) {
          var f = row.querySelector('[data-field="' + pair[0] + '"]');
          if (f) f.value = pair[1];
        });
      }
      row.querySelector("[data-retry]").addEventListener("click", function () { queue(entry, true); });
      row.querySelector("[data-remove]").addEventListener("click", function () { remove(entry); });
      row.addEventListener("change", function () {
        if (entry.state !== "chosen" && entry.state !== "refused") return;
        entry.fields = rowFields(entry);
        keep(entry);
      });
      rows.appendChild(fragment);
    }

    function setRow(entry, state, text) {
      var row = entry.row;
      row.dataset.state = state;
      row.querySelector("[data-state]").textContent = text;
      row.querySelector("[data-retry]").hidden = state !== "failed";
      row.querySelector("[data-remove]").hidden = state === "sending" || state === "done";
      // Once queued, the fields are what the Idempotency-Key stands for: they no longer change.
      var locked = state === "waiting" || state === "sending" || state === "done";
      row.querySelectorAll("[data-field]").forEach(function (f) { f.disabled = locked; });
    }

    function show(entry) {
      if (entry.state === "done") setRow(entry, "done", "Uploaded");
      else if (entry.state === "chosen") setRow(entry, "ready", entry.restored ? "Kept on this device: not uploaded yet" : "Ready to upload");
      else if (entry.state === "refused") setRow(entry, "failed", "Not uploaded");
      else if (entry.sending) setRow(entry, "sending", "Uploading " + (entry.percent || 0) + "%");
      else if (!navigator.onLine) setRow(entry, "waiting", "Waiting for the connection");
      else if (entry.nextAt && entry.nextAt > Date.now()) {
        setRow(entry, "waiting", "Waiting to upload: trying again in " + Math.ceil((entry.nextAt - Date.now()) / 1000) + " s");
      } else setRow(entry, "waiting", "Waiting to upload");
    }

    // -- keeping on this device ---------------------------------------------------------------------------------
    var askedToPersist = false;
    function keep(entry) {
      if (entry.state === "done") return Promise.resolve();
      if (!askedToPersist && navigator.storage && navigator.storage.persist) {
        // Ask the browser not to clear this site's storage when the disk runs low (it may say no).
        askedToPersist = true;
        navigator.storage.persist().catch(function () {});
      }
      return dbPut(entry).then(function () {
        entry.kept = true;
      }, function () {
        entry.kept = false;
        storageFailed = true;
        refresh();
      });
    }

    function forget(entry) {
      return dbDelete(entry.key).catch(function () { /* already gone */ });
    }

    // -- what the page says --------------------------------------------------------------------------------------
    function refresh() {
      var live = entries.filter(function (e) { return e.state !== "done"; });
      var chosen = live.filter(function (e) { return e.state === "chosen"; }).length;
      var queued = live.filter(function (e) { return e.state === "queued"; }).length;
      var refused = live.filter(function (e) { return e.state === "refused"; }).length;
      var done = entries.filter(function (e) { return e.state === "done"; }).length;
      var waiting = queued + refused;
      entries.forEach(show);

      uploadAll.hidden = chosen + refused === 0;
      var parts = [];
      if (done) parts.push(done + " uploaded");
      if (refused) parts.push(refused + " failed");
      summary.textContent = parts.join(", ");

      var lines = [];
      if (waiting) {
        var text = "Waiting to upload: " + waiting;
        if (!navigator.onLine && queued) text += ". There is no connection; they are kept on this device and sent when it returns.";
        else if (sending) text += " (" + sending + " uploading now).";
        else if (queued) text += ". They are kept on this device and sent again automatically.";
        else text += ".";
        if (refused) text += " " + plural(refused, "file was", "files were") + " refused: fix or remove " + (refused === 1 ? "it" : "them") + ".";
        lines.push(text);
      }
      if (chosen) lines.push(plural(chosen, "file is", "files are") + " chosen but not uploaded yet.");
      if (elsewhere) lines.push(plural(elsewhere, "more file is", "more files are") + " waiting on other cases on this device: open those cases to send them.");
      status.textContent = lines.join(" ");
      status.hidden = lines.length === 0;
      status.dataset.waiting = String(waiting);
      status.dataset.chosen = String(chosen);
      status.dataset.online = navigator.onLine ? "true" : "false";
      root.dataset.waiting = String(waiting + chosen);

      var unkept = live.filter(function (e) { return e.kept === false; }).length;
      if (unkept || storageFailed) {
        warning.textContent = unkept
          ? "This browser could not keep " + plural(unkept, "file", "files") + " on this device (storage is full or turned off): keep this page open until " + (unkept === 1 ? "it is" : "they are") + " uploaded, or " + (unkept === 1 ? "it is" : "they are") + " lost."
          : "This browser cannot keep files on this device: keep this page open until every file is uploaded.";
        warning.hidden = false;
      } else {
        warning.hidden = true;
      }

      if (sendButton) {
        var pending = waiting + chosen;
        if (pending) {
          sendButton.disabled = true;
          sendButton.dataset.heldByQueue = "true";
          sendWait.textContent = "The case can be sent once its images are uploaded: " +
            plural(pending, "file is", "files are") + " not uploaded yet" +
            (chosen ? " (upload or remove the chosen ones)" : "") + ".";
          sendWait.hidden = false;
        } else if (sendButton.dataset.heldByQueue) {
          delete sendButton.dataset.heldByQueue;
          sendButton.disabled = false;
          sendWait.hidden = true;
        }
      }
      if (uploadedSinceRedraw && sending === 0) {
        uploadedSinceRedraw = 0;
        // Show the images as the server filed them (tooth, kind, quality checks) and what is still needed.
        document.dispatchEvent(new CustomEvent("capture:images-changed"));
      }
    }

    // -- adding files ----------------------------------------------------------------------------------------
    function add(file, autoQueue) {
      var entry = { key: newKey(), owner: owner, referral: referral, name: file.name || "photo.jpg",
                    type: file.type || "", size: file.size, blob: file, fields: [], state: "chosen",
                    added: Date.now(), attempts: 0 };
      addRow(entry, true);
      if (autoQueue) {
        field(entry, "kind").value = "photo_intraoral";
        entry.fields = rowFields(entry);
        entry.state = "queued";
      }
      entries.push(entry);
      return keep(entry);
    }

    function queue(entry, fresh) {
      if (entry.state === "queued" || entry.state === "done") return;
      entry.fields = rowFields(entry);
      // A refused request stored nothing, so a new key cannot make a second image; it can be resent changed.
      if (fresh && entry.state === "refused") {
        var old = entry.key;
        entry.key = newKey();
        entry.row.dataset.key = entry.key;
        forget({ key: old });
      }
      entry.state = "queued";
      entry.error = null;
      entry.attempts = 0;
      entry.nextAt = 0;
      entry.row.querySelector("[data-row-errors]").hidden = true;
      keep(entry).then(pump);
      refresh();
    }

    function remove(entry) {
      if (entry.sending) return;
      if (entry.state === "queued" && !window.confirm("This file is not uploaded yet. Remove it from this device?")) return;
      entries = entries.filter(function (e) { return e !== entry; });
      entry.row.remove();
      forget(entry);
      refresh();
    }

    // -- sending -------------------------------------------------------------------------------------------------
    function transient(statusCode, body) {
      if (statusCode === 0 || statusCode === 408 || statusCode === 425 || statusCode === 429 || statusCode >= 500) return true;
      // The same file is still being taken in (by another tab, or a request whose answer was lost): ask again.
      if (statusCode === 409 && body && /still being processed/i.test(body.message || "")) return true;
      return statusCode === 401;  // signed out: kept here, sent after signing in again
    }

    function backoff(entry) {
      entry.attempts = (entry.attempts || 0) + 1;
      var wait = Math.min(LONGEST_WAIT, FIRST_WAIT * Math.pow(2, entry.attempts - 1));
      entry.nextAt = Date.now() + wait * (0.75 + Math.random() * 0.5);
    }

    function send(entry) {
      entry.sending = true;
      entry.percent = 0;
      sending += 1;
      refresh();
      var data = new FormData();
      entry.fields.forEach(function (pair) { data.append(pair[0], pair[1]); });
      data.append("file", entry.blob, entry.name);
      return new Promise(function (resolve) {
        var xhr = new XMLHttpRequest();
        xhr.open("POST", root.dataset.url);
        xhr.setRequestHeader("X-CSRF-Token", CSRF);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.setRequestHeader("Idempotency-Key", entry.key);
        xhr.upload.addEventListener("progress", function (event) {
          if (!event.lengthComputable) return;
          entry.percent = Math.round((event.loaded / event.total) * 100);
          entry.row.querySelector("[data-progress]").value = entry.percent;
          entry.row.querySelector("[data-state]").textContent = "Uploading " + entry.percent + "%";
        });
        function finished(statusCode, body) {
          entry.sending = false;
          sending -= 1;
          var errors = entry.row.querySelector("[data-row-errors]");
          if (statusCode === 200 || statusCode === 201) {
            entry.state = "done";
            entry.row.querySelector("[data-progress]").value = 100;
            errors.hidden = true;
            uploadedSinceRedraw += 1;
            forget(entry).then(refresh);
          } else if (transient(statusCode, body)) {
            backoff(entry);
            if (statusCode === 401) {
              showRowErrors(errors, "You were signed out. This file is kept on this device and sent after you sign in again and open this case.");
            } else {
              errors.hidden = true;
            }
          } else {
            entry.state = "refused";
            entry.error = (body && body.message) || ("The upload was refused (" + statusCode + ").");
            showRowErrors(errors, entry.error, errorDetails(body && body.errors, []));
            keep(entry);
          }
          refresh();
          resolve();
        }
        xhr.addEventListener("load", function () {
          var body = null;
          try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
          finished(xhr.status, body);
        });
        xhr.addEventListener("error", function () { finished(0, null); });
        xhr.addEventListener("abort", function () { finished(0, null); });
        xhr.addEventListener("timeout", function () { finished(0, null); });
        xhr.send(data);
      });
    }

    function pump() {
      clearTimeout(timer);
      timer = null;
      if (!navigator.onLine) {
        // The "online" event sends them; a look every 15 s covers a page that missed it (e.g. a tablet asleep).
        if (entries.some(function (e) { return e.state === "queued"; })) timer = setTimeout(pump, 15000);
        refresh();
        return;
      }
      var now = Date.now();
      var due = entries.filter(function (e) { return e.state === "queued" && !e.sending && !(e.nextAt > now); });
      while (sending < PARALLEL && due.length) {
        send(due.shift()).then(pump);
      }
      var later = entries.filter(function (e) { return e.state === "queued" && !e.sending && e.nextAt > now; });
      if (later.length) {
        var soonest = Math.min.apply(null, later.map(function (e) { return e.nextAt; }));
        // Wake at least every second while waiting, so the countdown on each row stays true.
        timer = setTimeout(pump, Math.max(100, Math.min(1000, soonest - now)));
      }
      refresh();
    }

    window.addEventListener("online", function () {
      // The connection is back: everything waiting goes now, without waiting out its back-off.
      entries.forEach(function (e) { if (e.state === "queued") { e.nextAt = 0; e.attempts = 0; } });
      pump();
    });
    window.addEventListener("offline", refresh);

    // -- choosing ----------------------------------------------------------------------------------------------
    function addAll(files, autoQueue) {
      var adding = Array.prototype.map.call(files, function (file) { return add(file, autoQueue); });
      refresh();
      return Promise.all(adding).then(function () { if (autoQueue) pump(); else refresh(); });
    }
    input.addEventListener("change", function () {
      var files = Array.prototype.slice.call(input.files);
      input.value = "";
      addAll(files, false);
    });
    if (camera) {
      camera.addEventListener("change", function () {
        var files = Array.prototype.slice.call(camera.files);
        camera.value = "";
        addAll(files, true);
      });
    }
    var zone = root.querySelector("[data-dropzone]");
    zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      addAll(event.dataTransfer.files, false);
    });
    uploadAll.addEventListener("click", function () {
      entries.forEach(function (e) { if (e.state === "chosen" || e.state === "refused") queue(e, true); });
    });

    // Signing out with files still waiting: they stay on this device (for this user only); say so.
    document.querySelectorAll("form[data-sign-out]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        var pending = entries.filter(function (e) { return e.state !== "done"; }).length + elsewhere;
        if (pending && !window.confirm(plural(pending, "file is", "files are") + " not uploaded yet. They stay on this " +
                                       "device and are sent when you sign in again and open the case. Sign out?")) {
          event.preventDefault();
          event.stopImmediatePropagation();
        }
      }, true);
    });

    // -- restoring what this device kept for this person -----------------------------------------------------
    function restore() {
      return dbByOwner(owner).then(function (kept) {
        kept.sort(function (a, b) { return a.added - b.added; });
        kept.forEach(function (item) {
          if (item.referral !== referral) { elsewhere += 1; return; }
          var entry = item;
          entry.restored = true;
          entry.kept = true;
          entry.attempts = 0;
          addRow(entry, false);
          if (entry.state === "refused" && entry.error) {
            showRowErrors(entry.row.querySelector("[data-row-errors]"), entry.error);
          }
          entries.push(entry);
        });
        pump();
      }, function () {
        storageFailed = true;
        refresh();
      });
    }

    // -- the service worker: this page opens again without a connection ------------------------------------------
    function keepPageOffline() {
      if (!("serviceWorker" in navigator) || !window.caches) return Promise.resolve(false);
      return navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () {
        return navigator.serviceWorker.ready;
      }).then(function () {
        if (navigator.serviceWorker.controller) return null;
        return new Promise(function (resolve) {
          navigator.serviceWorker.addEventListener("controllerchange", function () { resolve(null); }, { once: true });
        });
      }).then(function () {
        return caches.open(PAGES);
      }).then(function (cache) {
        var page = window.location.origin + window.location.pathname;
        var assets = [];
        document.querySelectorAll('script[src], link[rel="stylesheet"]').forEach(function (el) {
          var url = new URL(el.getAttribute("src") || el.getAttribute("href"), window.location.href);
          if (url.origin === window.location.origin) assets.push(url.href);
        });
        return cache.match(page).then(function (hit) {
          // Fetched once so the first visit is kept; later visits are refreshed by the worker itself.
          return Promise.all([hit ? null : cache.add(page), cache.addAll(assets)]);
        });
      }).then(function () {
        root.dataset.offlineReady = "true";
        return true;
      }).catch(function () {
        root.dataset.offlineReady = "false";
        return false;
      });
    }

    restore().then(function () {
      if (navigator.onLine) keepPageOffline();
      else root.dataset.offlineReady = "true";  // opened offline: this copy came from the worker
    });
    refresh();
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-capture-queue]").forEach(initCaptureQueue);
  });
})();

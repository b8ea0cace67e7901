/* Page behaviour: calls the JSON API with the session cookie and the page's CSRF token.
   Plain JavaScript, no build step, served from this host (the CSP allows no inline or outside scripts). */
(function () {
  "use strict";

  function meta(name) {
    var element = document.querySelector('meta[name="' + name + '"]');
    return element ? element.getAttribute("content") : "";
  }
  var CSRF = meta("csrf-token");
  var DRAFT_OWNER = meta("draft-owner");
  var DRAFT_PREFIX = "referral-draft:" + DRAFT_OWNER + ":";
  var DRAFT_MAX_AGE = 12 * 3600 * 1000;
  var sessionOver = false;

  function api(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") init.headers["X-CSRF-Token"] = CSRF;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      if (response.status === 401) sessionEnded();
      var type = response.headers.get("Content-Type") || "";
      var parse = type.indexOf("json") >= 0 && response.status !== 204
        ? response.json().catch(function () { return null; }) : Promise.resolve(null);
      return parse.then(function (data) { return { ok: response.ok, status: response.status, data: data }; });
    }, function () {
      return { ok: false, status: 0, data: { message: "The server could not be reached. Check the connection and try again." } };
    });
  }

  // Keys the API adds for programs, not people: their meaning is already in the messages beside them.
  var MACHINE_KEYS = { missing_teeth: true };

  // A field's path as a person reads it: its last part in words ("given_by" -> "Given by").
  function fieldWords(path) {
    var last = path.split(".").pop().replace(/_/g, " ");
    return last.charAt(0).toUpperCase() + last.slice(1);
  }

  // The API's error body is {code, status, message, errors}; errors may nest (lists and objects).
  function flattenErrors(errors, prefix, out, rename) {
    if (!errors) return out;
    if (typeof errors === "string") {
      var shown = prefix ? (rename ? rename(prefix) : fieldWords(prefix)) : prefix;
      out.push(shown ? shown + ": " + errors : errors);
      return out;
    }
    if (Array.isArray(errors)) {
      errors.forEach(function (item) { flattenErrors(item, prefix, out, rename); });
      return out;
    }
    Object.keys(errors).forEach(function (key) {
      if (MACHINE_KEYS[key]) return;
      var name = key === "json" || key === "form" || key === "files" || key === "query" ? prefix : (prefix ? prefix + "." + key : key);
      flattenErrors(errors[key], name, out, rename);
    });
    return out;
  }

  // The words a person reads for a field of `form`: its label, when the form has a field of that name.
  function labelIn(form) {
    return function (name) {
      if (!form) return name;
      var field = form.querySelector('[name="' + name + '"]');
      var label = field && field.id ? document.querySelector('label[for="' + field.id + '"]') : null;
      if (!label && field) label = field.closest("label");
      if (label) return label.textContent.trim();
      if (name === "csv") return "File";
      return fieldWords(name);
    };
  }

  function showErrors(region, result, form) {
    if (!region) return;
    region.textContent = "";
    var data = result.data || {};
    var heading = document.createElement("p");
    heading.className = "error";
    heading.textContent = data.message || ("The request failed (" + result.status + ").");
    region.appendChild(heading);
    var details = flattenErrors(data.errors, "", [], labelIn(form));
    if (details.length) {
      var list = document.createElement("ul");
      details.forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
      region.appendChild(list);
    }
    region.hidden = false;
    region.scrollIntoView({ block: "nearest" });
  }

  // -- drafts: what is typed in a form is kept in this browser (per user and page) until it is sent -------------
  // Kept only on this device, never sent to the server's logs; cleared once the form is saved or sent, on
  // signing out, and after 12 hours.
  function draftKey(form) { return DRAFT_PREFIX + window.location.pathname + ":" + form.dataset.draft; }

  function draftFields(form) {
    return Array.prototype.filter.call(form.elements, function (f) {
      return (f.id || f.name) && f.type !== "file" && f.type !== "button" && f.type !== "submit" && f.tagName !== "FIELDSET";
    });
  }

  function saveDraft(form) {
    if (!DRAFT_OWNER) return;
    var values = {};
    draftFields(form).forEach(function (f) {
      values[f.id || f.name] = f.type === "checkbox" ? f.checked : f.value;
    });
    var texts = {};
    form.querySelectorAll("[data-draft-text]").forEach(function (el) { texts[el.dataset.draftText] = el.textContent; });
    try {
      window.localStorage.setItem(draftKey(form), JSON.stringify({ saved_at: Date.now(), values: values, texts: texts }));
    } catch (e) { /* storage full or disabled: nothing to keep */ }
  }

  function clearDraft(form, sent) {
    clearTimeout(form.draftTimer);
    if (sent) form.draftCleared = true;
    try { window.localStorage.removeItem(draftKey(form)); } catch (e) { /* nothing kept */ }
  }

  function clearAllDrafts() {
    try {
      for (var i = window.localStorage.length - 1; i >= 0; i--) {
        var key = window.localStorage.key(i);
        if (key && key.indexOf(DRAFT_PREFIX) === 0) window.localStorage.removeItem(key);
      }
    } catch (e) { /* nothing kept */ }
  }

  function restoreDraft(form) {
    var saved = null;
    try { saved = JSON.parse(window.localStorage.getItem(draftKey(form)) || "null"); } catch (e) { saved = null; }
    if (!saved || !saved.values) return false;
    if (Date.now() - (saved.saved_at || 0) > DRAFT_MAX_AGE) { clearDraft(form); return false; }
    var changed = [];
    draftFields(form).forEach(function (f) {
      var key = f.id || f.name;
      if (!(key in saved.values)) return;
      if (f.type === "checkbox") {
        if (f.checked !== saved.values[key]) { f.checked = saved.values[key]; changed.push(f); }
      } else if (f.value !== saved.values[key]) {
        f.value = saved.values[key];
        changed.push(f);
      }
    });
    form.querySelectorAll("[data-draft-text]").forEach(function (el) {
      var text = (saved.texts || {})[el.dataset.draftText];
      if (text) el.textContent = text;
    });
    form.querySelectorAll("[data-tooth-chart]").forEach(function (chart) {
      var chosen = (chart.querySelector("[data-tooth-value]").value || "").split(",").filter(Boolean);
      chart.querySelectorAll("[data-tooth]").forEach(function (b) {
        b.setAttribute("aria-pressed", chosen.indexOf(b.dataset.tooth) >= 0 ? "true" : "false");
      });
      chart.querySelector("[data-tooth-summary]").textContent = chosen.length ? chosen.join(", ") : "none";
    });
    changed.forEach(function (f) { if (f.tagName === "SELECT" || f.type === "checkbox") f.dispatchEvent(new Event("change")); });
    if (changed.length) {
      var note = document.createElement("p");
      note.className = "draft-restored";
      note.setAttribute("role", "status");
      note.dataset.draftRestored = "";
      note.textContent = "What you typed before has been restored. It is not sent until you save or submit it.";
      form.insertBefore(note, form.firstChild);
    }
    return changed.length > 0;
  }

  function keepDrafts(form) {
    function later() {
      if (form.draftCleared) return;  // sent: nothing more to keep
      clearTimeout(form.draftTimer);
      form.draftTimer = setTimeout(function () { saveDraft(form); }, 400);
    }
    ["input", "change", "click"].forEach(function (name) { form.addEventListener(name, later); });
    restoreDraft(form);
  }

  function saveAllDrafts() {
    document.querySelectorAll("form[data-draft]").forEach(saveDraft);
  }

  // -- sessions: use of the page is activity; a notice before the idle logoff; back to this page after it ---------
  function sessionEnded() {
    if (sessionOver) return;
    sessionOver = true;
    saveAllDrafts();
    var here = window.location.pathname + window.location.search;
    window.location.assign("/login?ended=idle&next=" + encodeURIComponent(here));
  }

  function initSessionWatch() {
    var idle = parseInt(meta("session-idle-seconds"), 10) * 1000;
    var warning = parseInt(meta("session-warning-seconds"), 10) * 1000;
    var notice = document.querySelector("[data-idle-notice]");
    if (!idle || !notice) return;
    // The server counts every request as activity, so renewing at most this often keeps the session alive
    // while someone types without a request per keystroke.
    var throttle = Math.min(60000, idle / 4);
    var lastRenewed = Date.now();
    var pending = false;
    var asking = false;
    var countdown = notice.querySelector("[data-idle-countdown]");

    function renewed(secondsLeft) { lastRenewed = Date.now() - (idle - secondsLeft * 1000); schedule(); }

    function keepAlive() {
      pending = false;
      lastRenewed = Date.now();
      return fetch("/session/keep-alive", { method: "POST", credentials: "same-origin",
                                            headers: { "X-CSRF-Token": CSRF, "Accept": "application/json" } })
        .then(function (response) {
          if (response.status === 401) sessionEnded();
        }, function () { /* offline: the next tick tries again */ pending = true; });
    }

    function hideNotice() { notice.hidden = true; }

    function activity() {
      if (sessionOver) return;
      if (!notice.hidden) { hideNotice(); keepAlive(); schedule(); return; }
      if (Date.now() - lastRenewed >= throttle) { keepAlive(); schedule(); } else if (!pending) { pending = true; schedule(); }
    }
    ["keydown", "input", "pointerdown", "touchstart", "wheel"].forEach(function (name) {
      document.addEventListener(name, activity, { capture: true, passive: true });
    });
    notice.querySelector("[data-stay-signed-in]").addEventListener("click", function () {
      hideNotice();
      keepAlive();
      schedule();
    });

    function ask() {
      // Another tab may have kept the session alive: the server knows; asking does not count as activity.
      if (asking) return;
      asking = true;
      fetch("/session/status", { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.json(); })
        .then(function (status) {
          asking = false;
          if (!status.signed_in) { sessionEnded(); return; }
          renewed(status.seconds_left);
          if (status.seconds_left * 1000 > warning) hideNotice(); else notice.hidden = false;
        }, function () { asking = false; });
    }

    // One timer, set for the next moment something is due (a throttled renewal, the warning, the countdown), so
    // an idle page does no work.
    var timer = null;
    function schedule() {
      clearTimeout(timer);
      if (sessionOver) return;
      var now = Date.now();
      var left = lastRenewed + idle - now;
      var delay = left - warning;
      if (pending) delay = Math.min(delay, lastRenewed + throttle - now);
      if (left <= warning || !notice.hidden) delay = 1000;
      // At least every 15 seconds: a tablet that slept stops its timers, and a long one would wake up late.
      timer = setTimeout(tick, Math.max(250, Math.min(delay, 15000)));
    }

    function tick() {
      if (sessionOver) return;
      var now = Date.now();
      if (pending && now - lastRenewed >= throttle) { keepAlive(); schedule(); return; }
      var left = lastRenewed + idle - now;
      if (left <= warning) ask();
      if (!notice.hidden) {
        var seconds = Math.max(0, Math.round(left / 1000));
        countdown.textContent = seconds >= 60 ? Math.ceil(seconds / 60) + (seconds > 60 ? " minutes" : " minute")
          : seconds + (seconds === 1 ? " second" : " seconds");
      }
      schedule();
    }
    schedule();
  }

  function clearErrors(region) {
    if (region) { region.hidden = true; region.textContent = ""; }
  }

  function busy(button, on) {
    if (!button) return;
    button.disabled = on;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  // -- tooth chart ------------------------------------------------------------------------------------
  function initToothChart(chart) {
    var input = chart.querySelector("[data-tooth-value]");
    var summary = chart.querySelector("[data-tooth-summary]");
    var order = Array.prototype.map.call(chart.querySelectorAll("[data-tooth]"), function (b) { return b.dataset.tooth; });
    function sync() {
      var chosen = order.filter(function (t) {
        return chart.querySelector('[data-tooth="' + t + '"]').getAttribute("aria-pressed") === "true";
      });
      chosen.sort(function (a, b) {
        var na = parseInt(a, 10), nb = parseInt(b, 10);
        if (!isNaN(na) && !isNaN(nb)) return na - nb;
        if (!isNaN(na)) return -1;
        if (!isNaN(nb)) return 1;
        return a < b ? -1 : a > b ? 1 : 0;
      });
      input.value = chosen.join(",");
      summary.textContent = chosen.length ? chosen.join(", ") : "none";
    }
    chart.addEventListener("click", function (event) {
      var button = event.target.closest("[data-tooth]");
      if (!button) return;
      button.setAttribute("aria-pressed", button.getAttribute("aria-pressed") === "true" ? "false" : "true");
      sync();
    });
  }

  // -- patient search and create ------------------------------------------------------------------------
  function initPatientPicker(picker, errors) {
    var search = picker.querySelector("[data-patient-search]");
    var results = picker.querySelector("[data-patient-results]");
    var hidden = picker.querySelector("[data-patient-id]");
    var chosen = picker.querySelector("[data-patient-chosen]");
    var timer = null;
    var latest = 0;

    function choose(patient) {
      hidden.value = patient.id;
      chosen.textContent = "Patient: " + patient.last_name + ", " + patient.first_name + " (born " + patient.birth_date + ", " + patient.state + ")";
      chosen.classList.add("picked");
      results.textContent = "";
    }

    function render(items) {
      results.textContent = "";
      if (!items.length) {
        var none = document.createElement("li");
        none.textContent = "No patient matches. Add a new patient below.";
        results.appendChild(none);
        return;
      }
      items.forEach(function (patient) {
        var item = document.createElement("li");
        var button = document.createElement("button");
        button.type = "button";
        button.className = "link";
        button.textContent = patient.last_name + ", " + patient.first_name + " · born " + patient.birth_date;
        button.addEventListener("click", function () { choose(patient); });
        item.appendChild(button);
        results.appendChild(item);
      });
    }

    search.addEventListener("input", function () {
      clearTimeout(timer);
      var text = search.value.trim();
      if (text.length < 2) { results.textContent = ""; return; }
      timer = setTimeout(function () {
        var ticket = ++latest;
        api("GET", "/api/v1/patients?limit=10&q=" + encodeURIComponent(text)).then(function (result) {
          if (ticket !== latest) return;
          if (result.ok) render(result.data.items); else showErrors(errors, result);
        });
      }, 250);
    });

    var create = picker.querySelector("[data-create-patient]");
    var patientErrors = document.getElementById("patient-errors");
    create.addEventListener("click", function () {
      var box = picker.querySelector("[data-new-patient]");
      var body = {};
      ["first_name", "last_name", "birth_date", "sex", "state"].forEach(function (name) {
        var field = box.querySelector('[name="' + name + '"]');
        var value = field.value.trim();
        if (value) body[name] = name === "state" ? value.toUpperCase() : value;
      });
      clearErrors(patientErrors);
      busy(create, true);
      api("POST", "/api/v1/patients", body).then(function (result) {
        busy(create, false);
        if (!result.ok) { showErrors(patientErrors, result); return; }
        choose(result.data);
        box.open = false;
      });
    });
  }

  // -- new referral form ---------------------------------------------------------------------------------
  function initReferralForm(form) {
    var errors = document.getElementById("referral-errors");
    form.querySelectorAll("[data-tooth-chart]").forEach(initToothChart);
    var picker = form.querySelector("[data-patient-picker]");
    if (picker) initPatientPicker(picker, errors);

    var specialty = form.querySelector("[data-specialty]");
    var readers = form.querySelector("[data-reader-select]");
    function filterReaders() {
      Array.prototype.forEach.call(readers.options, function (option) {
        if (!option.value) return;
        var hide = option.dataset.specialty !== specialty.value;
        option.hidden = hide;
        option.disabled = hide;
        if (hide && option.selected) readers.value = "";
      });
    }
    specialty.addEventListener("change", filterReaders);
    filterReaders();

    var consentToggle = form.querySelector("[data-consent-toggle]");
    var consentFields = form.querySelector("[data-consent-fields]");
    consentToggle.addEventListener("change", function () { consentFields.hidden = !consentToggle.checked; });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(errors);
      var value = function (name) { var f = form.elements[name]; return f ? f.value.trim() : ""; };
      if (!value("patient_id")) {
        showErrors(errors, { status: 422, data: { message: "Choose or add the patient first." } });
        return;
      }
      var body = {
        patient_id: value("patient_id"),
        referring_provider_id: value("referring_provider_id"),
        specialty: value("specialty"),
        reason: value("reason"),
        teeth: value("teeth") ? value("teeth").split(",") : [],
        urgency: value("urgency"),
        mode: value("mode"),
        scope: value("scope"),
        place_of_service: value("place_of_service")
      };
      if (value("target_provider_id")) body.target_provider_id = value("target_provider_id");
      body.questions = Array.prototype.filter.call(form.querySelectorAll('input[name="questions"]'), function (box) {
        return box.checked;
      }).map(function (box) { return box.value; });
      if (value("restorability_decided_by")) body.restorability_decided_by = value("restorability_decided_by");
      if (consentToggle.checked) {
        body.consent = { given_by: value("consent_given_by"), method: value("consent_method"),
                         given_at: value("consent_given_at") };
      }
      var submit = form.querySelector('button[type="submit"]');
      busy(submit, true);
      api("POST", form.dataset.api, body).then(function (result) {
        busy(submit, false);
        if (!result.ok) { showErrors(errors, result); return; }
        clearDraft(form, true);
        window.location.assign("/referrals/" + result.data.id);
      });
    });
  }

  // -- uploads: one request per file, each with its own progress and retry --------------------------------
  function initUploader(root) {
    var input = root.querySelector("[data-file-input]");
    var rows = root.querySelector("[data-upload-rows]");
    var uploadAll = root.querySelector("[data-upload-all]");
    var summary = root.querySelector("[data-upload-summary]");
    var template = document.getElementById("upload-row-template");
    var counter = 0;
    var entries = [];

    function addFile(file) {
      var fragment = template.content.cloneNode(true);
      var row = fragment.querySelector("[data-upload-row]");
      var n = ++counter;
      row.querySelectorAll("[data-field]").forEach(function (field) {
        var id = "u" + n + "-" + field.dataset.field;
        field.id = id;
        field.name = field.dataset.field;
        var label = row.querySelector('[data-for="' + field.dataset.field + '"]');
        if (label) label.setAttribute("for", id);
      });
      row.querySelector("[data-file-name]").textContent = file.name + " · " + (file.size / 1048576).toFixed(1) + " MB";
      var field = function (name) { return row.querySelector('[data-field="' + name + '"]'); };
      field("teeth").value = root.dataset.teeth || "";
      field("reason").value = root.dataset.reason || "";
      // A DICOM file carries its own date and time: left empty, the server takes them from the file. Other
      // files start at the practice's current wall time (the server reads it in the practice's zone).
      if (/\.dcm$/i.test(file.name) || !/\.[a-z0-9]+$/i.test(file.name)) {
        row.querySelector("[data-time-hint]").hidden = false;
      } else {
        field("captured_at").value = root.dataset.captured || "";
      }
      if (root.dataset.provider) field("captured_by_provider_id").value = root.dataset.provider;
      if (/\.(jpe?g|png)$/i.test(file.name)) field("kind").value = "photo_intraoral";
      var entry = { file: file, row: row, state: "ready", n: n };
      row.dataset.uploadIndex = String(n);
      row.querySelector("[data-retry]").addEventListener("click", function () { send(entry); });
      row.querySelector("[data-remove]").addEventListener("click", function () {
        if (entry.state === "sending") return;
        entries = entries.filter(function (e) { return e !== entry; });
        row.remove();
        refresh();
      });
      entries.push(entry);
      rows.appendChild(fragment);
    }

    function setState(entry, state, text) {
      entry.state = state;
      entry.row.dataset.state = state;
      entry.row.querySelector("[data-state]").textContent = text;
      entry.row.querySelector("[data-retry]").hidden = state !== "failed";
      entry.row.querySelector("[data-remove]").hidden = state === "sending" || state === "done";
      entry.row.querySelectorAll("[data-field]").forEach(function (f) { f.disabled = state === "sending" || state === "done"; });
      refresh();
    }

    function refresh() {
      var waiting = entries.filter(function (e) { return e.state === "ready" || e.state === "failed"; }).length;
      var done = entries.filter(function (e) { return e.state === "done"; }).length;
      var failed = entries.filter(function (e) { return e.state === "failed"; }).length;
      uploadAll.hidden = waiting === 0;
      var parts = [];
      if (done) parts.push(done + " uploaded");
      if (failed) parts.push(failed + " failed");
      summary.textContent = parts.join(", ");
    }

    function addThumbnail(image, label) {
      var uploadedList = document.querySelector("[data-uploaded-list]");
      if (!uploadedList) return;
      var section = document.querySelector("[data-uploaded-section]");
      if (section) section.hidden = false;
      var item = document.createElement("li");
      var img = document.createElement("img");
      img.src = "/api/v1/images/" + image.id + "/thumbnail";
      img.alt = label;
      img.width = 128;
      img.height = 128;
      var caption = document.createElement("span");
      caption.textContent = label;
      item.appendChild(img);
      item.appendChild(caption);
      ((image && image.quality_warnings) || []).forEach(function (warning) {
        var note = document.createElement("p");
        note.className = "note quality-warning";
        note.dataset.qualityWarning = warning.code;
        note.textContent = "Likely unusable: " + warning.message;
        item.appendChild(note);
      });
      uploadedList.appendChild(item);
    }

    function send(entry) {
      if (entry.state === "sending" || entry.state === "done") return Promise.resolve();
      var row = entry.row;
      var errors = row.querySelector("[data-row-errors]");
      clearErrors(errors);
      var data = new FormData();
      row.querySelectorAll("[data-field]").forEach(function (f) {
        var value = f.value.trim();
        if (!value) return;
        data.append(f.name, value);
      });
      data.append("file", entry.file, entry.file.name);
      var progress = row.querySelector("[data-progress]");
      progress.value = 0;
      setState(entry, "sending", "Uploading 0%");
      return new Promise(function (resolve) {
        var xhr = new XMLHttpRequest();
        xhr.open("POST", root.dataset.url);
        xhr.setRequestHeader("X-CSRF-Token", CSRF);
        xhr.setRequestHeader("Accept", "application/json");
        xhr.upload.addEventListener("progress", function (event) {
          if (!event.lengthComputable) return;
          var percent = Math.round((event.loaded / event.total) * 100);
          progress.value = percent;
          row.querySelector("[data-state]").textContent = "Uploading " + percent + "%";
        });
        xhr.addEventListener("load", function () {
          var body = null;
          try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
          if (xhr.status === 201 || xhr.status === 200) {
            progress.value = 100;
            setState(entry, "done", "Uploaded");
            addThumbnail(body, row.querySelector('[data-field="kind"]').selectedOptions[0].textContent);
          } else {
            setState(entry, "failed", "Not uploaded");
            showErrors(errors, { status: xhr.status, data: body || { message: "The upload failed (" + xhr.status + ")." } });
          }
          resolve();
        });
        xhr.addEventListener("error", function () {
          setState(entry, "failed", "Not uploaded");
          showErrors(errors, { status: 0, data: { message: "The connection failed during the upload. Retry this file." } });
          resolve();
        });
        xhr.send(data);
      });
    }

    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, addFile);
      input.value = "";
      refresh();
    });
    var zone = root.querySelector("[data-dropzone]");
    zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", function () { zone.classList.remove("over"); });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      zone.classList.remove("over");
      Array.prototype.forEach.call(event.dataTransfer.files, addFile);
      refresh();
    });
    uploadAll.addEventListener("click", function () {
      // Two at a time: enough to keep a clinic uplink busy without starving the page.
      var queue = entries.filter(function (e) { return e.state === "ready" || e.state === "failed"; });
      function next() { var e = queue.shift(); return e ? send(e).then(next) : Promise.resolve(); }
      busy(uploadAll, true);
      Promise.all([next(), next()]).then(function () {
        busy(uploadAll, false);
        refresh();
        // Show the images as the server filed them (tooth, kind, notes) and what is still needed.
        refreshImages();
      });
    });
  }

  // The case page's uploaded images and "still needed" line, redrawn from the server without a reload, so
  // files still waiting in the uploader keep their place.
  function refreshImages() {
    return fetch(window.location.pathname, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html");
        ["[data-uploaded-section]", "[data-missing]"].forEach(function (selector) {
          var now = document.querySelector(selector);
          var next = fresh.querySelector(selector);
          if (now && next) now.replaceWith(document.importNode(next, true));
        });
        document.querySelectorAll("form[data-image-fix]").forEach(initImageFix);
        watchPendingPreviews();
      }, function () { /* the next page load shows them */ });
  }

  // Images whose preview is drawn after the upload's answer get their quality checks with it: the list is
  // redrawn every few seconds until none is pending (for at most about two minutes).
  var pendingChecks = 0;
  var pendingTimer = null;
  function watchPendingPreviews() {
    if (pendingTimer || !document.querySelector("[data-preview-pending]")) {
      if (!document.querySelector("[data-preview-pending]")) pendingChecks = 0;
      return;
    }
    if (pendingChecks >= 40) return;
    pendingChecks += 1;
    pendingTimer = window.setTimeout(function () {
      pendingTimer = null;
      refreshImages();
    }, 3000);
  }

  // -- fixing an uploaded image before the case is sent: only what was changed is sent --------------------------
  function initImageFix(form) {
    var errors = document.getElementById("image-errors");
    var initial = {};
    Array.prototype.forEach.call(form.elements, function (f) { if (f.name) initial[f.name] = f.value; });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(errors);
      var body = {};
      Array.prototype.forEach.call(form.elements, function (f) {
        if (!f.name || f.value === initial[f.name]) return;
        var value = f.value.trim();
        if (f.name === "teeth") body.teeth = value ? value.split(",").map(function (t) { return t.trim(); }).filter(Boolean) : [];
        else if (f.name === "area") body.area = value || null;
        else body[f.name] = value;
      });
      if (!Object.keys(body).length) {
        showErrors(errors, { status: 422, data: { message: "Nothing was changed." } });
        return;
      }
      var submit = form.querySelector('button[type="submit"]');
      busy(submit, true);
      api("PATCH", form.dataset.url, body).then(function (result) {
        busy(submit, false);
        if (!result.ok) { showErrors(errors, result); return; }
        refreshImages();
      });
    });
    var remove = form.querySelector("[data-image-remove]");
    remove.addEventListener("click", function () {
      if (!window.confirm(remove.dataset.confirm)) return;
      clearErrors(errors);
      busy(remove, true);
      api("DELETE", form.dataset.url).then(function (result) {
        busy(remove, false);
        if (!result.ok) { showErrors(errors, result); return; }
        refreshImages();
      });
    });
  }

  // -- workflow actions: a button or a small form, each one API call ----------------------------------------
  function formBody(form) {
    var body = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.disabled) return;
      if (field.type === "checkbox") {
        if (field.value && field.value !== "on") {
          body[field.name] = body[field.name] || [];
          if (field.checked) body[field.name].push(field.value);
        } else {
          body[field.name] = field.checked;
        }
        return;
      }
      var value = field.value.trim();
      if (!value) return;
      // A date-and-time field's value is the practice's wall time; the server reads it in the practice's zone.
      body[field.name] = value;
    });
    return body;
  }

  function afterAction(result, next) {
    var errors = document.getElementById("action-errors");
    if (!result.ok) { showErrors(errors, result); return; }
    if (next) window.location.assign(next); else window.location.reload();
  }

  function initActions() {
    document.querySelectorAll("button[data-api-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
        busy(button, true);
        api(button.dataset.method || "POST", button.dataset.url, {}).then(function (result) {
          busy(button, false);
          afterAction(result, button.dataset.next);
        });
      });
    });
    document.querySelectorAll("form[data-action-form]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
        var submit = form.querySelector('button[type="submit"]');
        busy(submit, true);
        api(form.dataset.method || "POST", form.dataset.url, formBody(form)).then(function (result) {
          busy(submit, false);
          afterAction(result, form.dataset.next);
        });
      });
    });
  }

  // -- the reader's findings and signature -------------------------------------------------------------------
  function initReportForm(form) {
    var errors = document.getElementById("report-errors");
    var status = form.querySelector("[data-report-status]");
    function draft() {
      var findings = Array.prototype.map.call(form.querySelectorAll("[data-finding]"), function (set) {
        var finding = { image_id: set.dataset.imageId };
        set.querySelectorAll("textarea, select").forEach(function (field) {
          var value = field.value.trim();
          finding[field.name] = value ? value : null;
        });
        return finding;
      });
      var text = function (name) { var value = form.elements[name].value.trim(); return value ? value : null; };
      return { findings: findings, impression: text("impression"), recommendation: text("recommendation"),
               answer: form.elements.answer ? text("answer") : null,
               evaluation_performed: form.elements.evaluation_performed.checked };
    }
    function save() {
      clearErrors(errors);
      status.textContent = "Saving…";
      return api("PUT", form.dataset.url, draft()).then(function (result) {
        if (!result.ok) { status.textContent = ""; showErrors(errors, result); return false; }
        // Saved on the server: the copy kept in this browser is no longer needed.
        clearDraft(form);
        status.textContent = "Draft saved.";
        return true;
      });
    }
    var saveButton = form.querySelector("[data-save-draft]");
    saveButton.addEventListener("click", function () {
      busy(saveButton, true);
      save().then(function () { busy(saveButton, false); });
    });
    var sign = form.querySelector("[data-sign-report]");
    sign.addEventListener("click", function () {
      if (!window.confirm("Sign the report? A signed report cannot be changed; later notes become addenda.")) return;
      busy(sign, true);
      save().then(function (saved) {
        if (!saved) { busy(sign, false); return null; }
        return api("POST", sign.dataset.signUrl).then(function (result) {
          busy(sign, false);
          if (!result.ok) { showErrors(errors, result); return; }
          clearDraft(form, true);
          window.location.reload();
        });
      });
    });
  }

  // -- downloads: fetched so a refusal (e.g. an 837D that fails its check) is shown, not navigated to -----------
  function initDownloads() {
    document.querySelectorAll("[data-download]").forEach(function (button) {
      button.addEventListener("click", function () {
        var errors = document.getElementById("download-errors");
        clearErrors(errors);
        busy(button, true);
        fetch(button.dataset.url, { credentials: "same-origin" }).then(function (response) {
          if (!response.ok) {
            return response.json().catch(function () { return null; }).then(function (data) {
              showErrors(errors, { status: response.status, data: data || { message: "The download failed (" + response.status + ")." } });
            });
          }
          return response.blob().then(function (blob) {
            var link = document.createElement("a");
            link.href = URL.createObjectURL(blob);
            link.download = button.dataset.filename;
            document.body.appendChild(link);
            link.click();
            link.remove();
            setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
          });
        }, function () {
          showErrors(errors, { status: 0, data: { message: "The server could not be reached." } });
        }).then(function () { busy(button, false); });
      });
    });
  }

  // -- set-up pages: forms and buttons that call the API ----------------------------------------------------
  // A field's name is its path in the JSON body ("address.zip"); data-kind="list" splits on commas,
  // data-kind="bool" reads a checkbox, data-empty="null" sends null for an empty field (otherwise it is left out).
  function setupBody(form) {
    var body = form.dataset.extra ? JSON.parse(form.dataset.extra) : {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || field.disabled || field.type === "submit" || field.type === "button") return;
      var value;
      if (field.dataset.kind === "bool") value = field.checked;
      else if (field.dataset.kind === "list") {
        value = field.value.split(",").map(function (item) { return item.trim().toUpperCase(); })
          .filter(function (item) { return item; });
      } else {
        value = field.value.trim();
        if (value === "") {
          if (field.dataset.empty !== "null") return;
          value = null;
        }
      }
      var path = field.name.split(".");
      var target = body;
      path.slice(0, -1).forEach(function (part) { target = target[part] = target[part] || {}; });
      target[path[path.length - 1]] = value;
    });
    return body;
  }

  function showLink(data) {
    var box = document.getElementById("link-result");
    if (!box || !(data && data.set_password_url)) return false;
    box.querySelector("[data-link-url]").value = data.set_password_url;
    var expires = data.set_password_expires_at || data.expires_at;
    box.querySelector("[data-link-expiry]").textContent = expires ? new Date(expires).toLocaleString() : "";
    box.querySelector("[data-link-title]").textContent = "Link to set a password for " + (data.email || "this user") + ".";
    box.hidden = false;
    box.scrollIntoView({ block: "nearest" });
    box.querySelector("[data-link-url]").select();
    return true;
  }

  function afterSave(form, data) {
    if (form.dataset.then === "open" && data && data.id) {
      window.location.assign("/admin/practices/" + data.id);
      return;
    }
    if (showLink(data)) return;
    if (data && data.status === "received" && data.message) {
      // Taken in without making an account (the address cannot be used here now): say so and keep the form.
      window.alert(data.message);
      return;
    }
    var done = form.dataset.done ? document.getElementById(form.dataset.done) : null;
    if (done) { done.hidden = false; return; }
    window.location.reload();
  }

  function initApiForms() {
    document.querySelectorAll("[data-api-form]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var errors = document.getElementById(form.dataset.errors);
        clearErrors(errors);
        var done = form.dataset.done ? document.getElementById(form.dataset.done) : null;
        if (done) done.hidden = true;
        var submit = form.querySelector('button[type="submit"]');
        busy(submit, true);
        api(form.dataset.method || "POST", form.dataset.api, setupBody(form)).then(function (result) {
          busy(submit, false);
          if (!result.ok) { showErrors(errors, result, form); return; }
          afterSave(form, result.data);
        });
      });
    });
    // The set-up pages' buttons (method and API path on the button); the case pages' actions are initActions'.
    document.querySelectorAll("[data-setup-action]").forEach(function (button) {
      button.addEventListener("click", function () {
        if (button.dataset.confirm && !window.confirm(button.dataset.confirm)) return;
        var errors = document.getElementById(button.dataset.errors);
        clearErrors(errors);
        busy(button, true);
        var body = button.dataset.body ? JSON.parse(button.dataset.body) : undefined;
        api(button.dataset.method, button.dataset.api, body).then(function (result) {
          busy(button, false);
          if (!result.ok) { showErrors(errors, result); return; }
          if (result.data && result.data.set_password_url) {
            showLink(result.data);
            return;
          }
          window.location.reload();
        });
      });
    });
  }

  function initFeeSchedule(form) {
    var errors = document.getElementById(form.dataset.errors);
    var rows = form.querySelector("[data-fee-rows]");
    form.querySelector("[data-fee-add]").addEventListener("click", function () {
      var last = rows.lastElementChild;
      var row = last.cloneNode(true);
      row.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      rows.appendChild(row);
      row.querySelector("input").focus();
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(errors);
      var body = {};
      rows.querySelectorAll("tr").forEach(function (row) {
        var code = row.querySelector('[name="code"]').value.trim().toUpperCase();
        var fee = row.querySelector('[name="fee"]').value.trim().replace("$", "");
        if (code || fee) body[code || "(no code)"] = fee;
      });
      var submit = form.querySelector('button[type="submit"]');
      busy(submit, true);
      api("PUT", form.dataset.api, body).then(function (result) {
        busy(submit, false);
        if (!result.ok) { showErrors(errors, result); return; }
        window.location.reload();
      });
    });
  }

  function initFeeImport(input) {
    var errors = document.getElementById(input.dataset.errors);
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) return;
      clearErrors(errors);
      file.text().then(function (text) {
        return fetch(input.dataset.feeImport, {
          method: "PUT", credentials: "same-origin", body: text,
          headers: { "Content-Type": "text/csv", "Accept": "application/json", "X-CSRF-Token": CSRF }
        }).then(function (response) {
          return response.json().catch(function () { return null; }).then(function (data) {
            if (!response.ok) { showErrors(errors, { status: response.status, data: data }); return; }
            window.location.reload();
          });
        });
      }, function () {
        showErrors(errors, { status: 0, data: { message: "The file could not be read." } });
      }).then(function () { input.value = ""; });
    });
  }

  function saveText(text, filename) {
    var link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "application/edi-x12" }));
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 10000);
  }

  // -- claims: a selection sent as one 837D, billing's narrative, payer files (835, 999, 277CA) -----------------
  function initBatchForm(form) {
    var errors = document.getElementById(form.dataset.errors);
    var status = form.querySelector("[data-batch-status]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(errors);
      var ids = Array.prototype.map.call(form.querySelectorAll('input[name="claim_id"]:checked'), function (box) { return box.value; });
      if (!ids.length) {
        showErrors(errors, { status: 0, data: { message: "Choose the claims to send." } });
        return;
      }
      var button = form.querySelector('button[type="submit"]');
      busy(button, true);
      api("POST", "/api/v1/claim-batches", { claim_ids: ids }).then(function (result) {
        busy(button, false);
        if (!result.ok) { showErrors(errors, result); return; }
        saveText(result.data.interchange, "interchange-" + result.data.control_number + ".x12");
        if (status) status.textContent = "Sent " + ids.length + " claim(s) as interchange " + result.data.control_number + ".";
        setTimeout(function () { window.location.reload(); }, 1500);
      });
    });
  }

  function initNarrativeForm(form) {
    var errors = document.getElementById(form.dataset.errors);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(errors);
      var button = form.querySelector('button[type="submit"]');
      busy(button, true);
      api("PATCH", form.dataset.url, { narrative: form.elements.narrative.value }).then(function (result) {
        busy(button, false);
        if (!result.ok) { showErrors(errors, result); return; }
        window.location.reload();
      });
    });
  }

  function initPayerFileForm(form) {
    var errors = document.getElementById(form.dataset.errors);
    var status = form.querySelector("[data-file-status]");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clearErrors(errors);
      var file = form.elements.file.files[0];
      if (!file) {
        showErrors(errors, { status: 0, data: { message: "Choose the file the payer sent." } });
        return;
      }
      var button = form.querySelector('button[type="submit"]');
      busy(button, true);
      file.text().then(function (text) {
        return fetch(form.elements.kind.value, {
          method: "POST", credentials: "same-origin", body: text,
          headers: { "Accept": "application/json", "Content-Type": "text/plain", "X-CSRF-Token": CSRF }
        }).then(function (response) {
          return response.json().catch(function () { return null; }).then(function (data) {
            return { ok: response.ok, status: response.status, data: data };
          });
        });
      }).then(function (result) {
        busy(button, false);
        if (!result.ok) { showErrors(errors, result); return; }
        var data = result.data || {};
        var done = (data.claims || data.results || []).length;
        var unmatched = (data.unmatched || []).length;
        if (status) status.textContent = "Posted: " + done + " claim(s) updated, " + unmatched + " not this practice's.";
        setTimeout(function () { window.location.reload(); }, 1500);
      }, function () {
        busy(button, false);
        showErrors(errors, { status: 0, data: { message: "The file could not be read or sent." } });
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-batch-form]").forEach(initBatchForm);
    document.querySelectorAll("[data-narrative-form]").forEach(initNarrativeForm);
    document.querySelectorAll("[data-payer-file-form]").forEach(initPayerFileForm);
    initApiForms();
    document.querySelectorAll("[data-fee-form]").forEach(initFeeSchedule);
    document.querySelectorAll("[data-fee-import]").forEach(initFeeImport);
    var referralForm = document.querySelector("[data-referral-form]");
    if (referralForm) initReferralForm(referralForm);
    document.querySelectorAll("[data-uploader]").forEach(initUploader);
    // capture-queue.js (the case page's offline-tolerant uploader) asks for the uploaded images to be redrawn.
    document.addEventListener("capture:images-changed", function () { refreshImages(); });
    watchPendingPreviews();
    document.querySelectorAll("[data-report-form]").forEach(initReportForm);
    document.querySelectorAll("form[data-image-fix]").forEach(initImageFix);
    document.querySelectorAll("form[data-draft]").forEach(keepDrafts);
    document.querySelectorAll("form[data-sign-out]").forEach(function (form) {
      form.addEventListener("submit", clearAllDrafts);
    });
    initSessionWatch();
    initActions();
    initDownloads();
    // Opening a case with its conversation marks its messages and changes as seen by this person.
    document.querySelectorAll("[data-mark-read]").forEach(function (section) {
      api("POST", section.dataset.markRead, {});
    });
  });
})();

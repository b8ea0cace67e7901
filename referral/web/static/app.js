/* Page behaviour: calls the JSON API with the session cookie and the page's CSRF token.
   Plain JavaScript, no build step, served from this host (the CSP allows no inline or outside scripts). */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function api(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") init.headers["X-CSRF-Token"] = CSRF;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      var parse = type.indexOf("json") >= 0 ? response.json() : Promise.resolve(null);
      return parse.then(function (data) { return { ok: response.ok, status: response.status, data: data }; });
    }, function () {
      return { ok: false, status: 0, data: { message: "The server could not be reached. Check the connection and try again." } };
    });
  }

  // The API's error body is {code, status, message, errors}; errors may nest (lists and objects).
  function flattenErrors(errors, prefix, out) {
    if (!errors) return out;
    if (typeof errors === "string") { out.push(prefix ? prefix + ": " + errors : errors); return out; }
    if (Array.isArray(errors)) {
      errors.forEach(function (item) { flattenErrors(item, prefix, out); });
      return out;
    }
    Object.keys(errors).forEach(function (key) {
      var name = key === "json" || key === "form" || key === "files" || key === "query" ? prefix : (prefix ? prefix + "." + key : key);
      flattenErrors(errors[key], name, out);
    });
    return out;
  }

  function showErrors(region, result) {
    if (!region) return;
    region.textContent = "";
    var data = result.data || {};
    var heading = document.createElement("p");
    heading.className = "error";
    heading.textContent = data.message || ("The request failed (" + result.status + ").");
    region.appendChild(heading);
    var details = flattenErrors(data.errors, "", []);
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

  function clearErrors(region) {
    if (region) { region.hidden = true; region.textContent = ""; }
  }

  function localToIso(value) {
    // <input type="datetime-local"> gives local wall time without an offset; the API wants one.
    if (!value) return null;
    var when = new Date(value);
    return isNaN(when.getTime()) ? value : when.toISOString();
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
      if (consentToggle.checked) {
        body.consent = { given_by: value("consent_given_by"), method: value("consent_method"),
                         given_at: localToIso(value("consent_given_at")) };
      }
      var submit = form.querySelector('button[type="submit"]');
      busy(submit, true);
      api("POST", form.dataset.api, body).then(function (result) {
        busy(submit, false);
        if (!result.ok) { showErrors(errors, result); return; }
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
    var uploadedList = document.querySelector("[data-uploaded-list]");
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
      field("captured_at").value = root.dataset.captured || "";
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
      if (!uploadedList) return;
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
        data.append(f.name, f.name === "captured_at" ? localToIso(value) : value);
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
      Promise.all([next(), next()]).then(function () { busy(uploadAll, false); refresh(); });
    });
  }

  // -- workflow actions: a button or a small form, each one API call ----------------------------------------
  function formBody(form) {
    var body = {};
    var datetimes = (form.dataset.datetime || "").split(",");
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
      body[field.name] = datetimes.indexOf(field.name) >= 0 ? localToIso(value) : value;
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
               evaluation_performed: form.elements.evaluation_performed.checked };
    }
    function save() {
      clearErrors(errors);
      status.textContent = "Saving…";
      return api("PUT", form.dataset.url, draft()).then(function (result) {
        if (!result.ok) { status.textContent = ""; showErrors(errors, result); return false; }
        status.textContent = "Draft saved at " + new Date().toLocaleTimeString() + ".";
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

  document.addEventListener("DOMContentLoaded", function () {
    var referralForm = document.querySelector("[data-referral-form]");
    if (referralForm) initReferralForm(referralForm);
    document.querySelectorAll("[data-uploader]").forEach(initUploader);
    document.querySelectorAll("[data-report-form]").forEach(initReportForm);
    initActions();
    initDownloads();
  });
})();

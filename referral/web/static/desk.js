/* The reader's desk on a case page (templates/_findings.html): the findings form beside the viewer.
 *
 * - Moving into an image's findings shows that image in the viewer (the "viewer:show" event of viewer.js).
 * - "Within normal limits" fills the empty fields of one image.
 * - The reader's own phrases (GET/POST /api/v1/me/phrases, DELETE /api/v1/me/phrases/{id}) are put into the
 *   field the reader was last typing in, at the cursor, by a click or by Enter on the phrase. Alt+P in a field
 *   goes to the phrases; Escape in the phrases goes back to the field.
 * Plain JavaScript, no build step; the page's CSP allows no inline scripts.
 */
(function () {
  "use strict";

  function csrf() {
    var element = document.querySelector('meta[name="csrf-token"]');
    return element ? element.getAttribute("content") : "";
  }

  function call(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (method !== "GET") init.headers["X-CSRF-Token"] = csrf();
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(url, init).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      var parse = type.indexOf("json") >= 0 && response.status !== 204
        ? response.json().catch(function () { return null; }) : Promise.resolve(null);
      return parse.then(function (data) { return { ok: response.ok, status: response.status, data: data }; });
    }, function () {
      return { ok: false, status: 0, data: { message: "The server could not be reached. Check the connection and try again." } };
    });
  }

  function showProblem(region, result) {
    if (!region) return;
    region.textContent = "";
    var data = result.data || {};
    var heading = document.createElement("p");
    heading.className = "error";
    heading.textContent = data.message || ("The request failed (" + result.status + ").");
    region.appendChild(heading);
    var errors = data.errors || {};
    var body = errors.json || errors;
    var texts = [];
    Object.keys(body).forEach(function (key) {
      var value = body[key];
      (Array.isArray(value) ? value : [value]).forEach(function (item) {
        if (typeof item === "string") texts.push(item);
      });
    });
    if (texts.length) {
      var list = document.createElement("ul");
      texts.forEach(function (text) {
        var item = document.createElement("li");
        item.textContent = text;
        list.appendChild(item);
      });
      region.appendChild(list);
    }
    region.hidden = false;
  }

  function clearProblem(region) {
    if (!region) return;
    region.textContent = "";
    region.hidden = true;
  }

  function changed(field) {
    // The draft keeper of app.js and anything else listening see the change as if typed.
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function initDesk(section) {
    var form = section.querySelector("[data-report-form]");
    var viewer = document.querySelector("[data-desk] [data-viewer]") || document.querySelector("[data-viewer]");
    var panel = section.querySelector("[data-phrases]");
    var lastField = null;
    var lastStart = null;
    var lastEnd = null;

    function remember(field) {
      lastField = field;
      lastStart = field.selectionStart;
      lastEnd = field.selectionEnd;
    }

    // -- an image's findings show that image ----------------------------------------------------------------
    if (form) {
      form.addEventListener("focusin", function (event) {
        var set = event.target.closest ? event.target.closest("[data-finding]") : null;
        if (set && viewer) {
          viewer.dispatchEvent(new CustomEvent("viewer:show", { detail: { imageId: set.dataset.imageId } }));
        }
        if (event.target.matches && event.target.matches("[data-phrase-target]")) remember(event.target);
      });
      ["keyup", "mouseup", "input", "select"].forEach(function (name) {
        form.addEventListener(name, function (event) {
          if (event.target.matches && event.target.matches("[data-phrase-target]")) remember(event.target);
        });
      });

      // -- within normal limits ----------------------------------------------------------------------------
      var words = form.dataset.wnl || "Within normal limits";
      var status = form.querySelector("[data-report-status]");
      form.querySelectorAll("[data-wnl-fill]").forEach(function (button) {
        button.addEventListener("click", function () {
          var set = button.closest("[data-finding]");
          var filled = 0;
          set.querySelectorAll("textarea").forEach(function (field) {
            if (field.value.trim()) return;   // what the reader wrote stays
            field.value = words;
            changed(field);
            filled += 1;
          });
          var legend = set.querySelector("legend");
          if (status) {
            status.textContent = filled
              ? filled + " empty field" + (filled === 1 ? "" : "s") + " of " + (legend ? legend.textContent : "this image") + " set to " + words + "."
              : "Every field of " + (legend ? legend.textContent : "this image") + " already has text.";
          }
        });
      });

      // Alt+P: from a field to the phrases.
      form.addEventListener("keydown", function (event) {
        if (!panel || !event.altKey || event.ctrlKey || event.metaKey) return;
        if (event.key !== "p" && event.key !== "P" && event.code !== "KeyP") return;
        if (!(event.target.matches && event.target.matches("[data-phrase-target]"))) return;
        event.preventDefault();
        remember(event.target);
        var first = panel.querySelector("[data-phrase-insert]") || panel.querySelector("[data-phrase-new]");
        if (first) first.focus();
      });
    }

    if (!panel) return;

    // -- phrases ---------------------------------------------------------------------------------------------
    var list = panel.querySelector("[data-phrase-list]");
    var empty = panel.querySelector("[data-phrase-empty]");
    var input = panel.querySelector("[data-phrase-new]");
    var addButton = panel.querySelector("[data-phrase-add]");
    var errors = document.getElementById("phrase-errors");
    var said = panel.querySelector("[data-phrase-status]");

    function say(text) { if (said) said.textContent = text; }

    function insert(text) {
      var field = lastField;
      if (!field || !document.body.contains(field)) {
        field = form ? form.querySelector("[data-phrase-target]") : null;
        if (!field) return;
        lastStart = lastEnd = field.value.length;
      }
      var value = field.value;
      var start = lastStart === null || lastStart === undefined ? value.length : Math.min(lastStart, value.length);
      var end = lastEnd === null || lastEnd === undefined ? start : Math.min(Math.max(lastEnd, start), value.length);
      var before = value.slice(0, start);
      var after = value.slice(end);
      // A phrase is a sentence of its own: a space between it and the words around it.
      var piece = (before && !/\s$/.test(before) ? " " : "") + text + (after && !/^\s/.test(after) ? " " : "");
      var room = field.maxLength > 0 ? field.maxLength - (before.length + after.length) : Infinity;
      if (piece.length > room) {
        say("The phrase does not fit in that field.");
        showProblem(errors, { status: 0, data: { message: "The phrase does not fit: the field holds at most " + field.maxLength + " characters." } });
        return;
      }
      clearProblem(errors);
      field.value = before + piece + after;
      var caret = before.length + piece.length;
      field.focus();
      field.setSelectionRange(caret, caret);
      remember(field);
      changed(field);
      var label = field.id ? document.querySelector('label[for="' + field.id + '"]') : null;
      say("Phrase added to " + (label ? label.textContent.trim() : "the field") + ".");
    }

    function render(phrase) {
      var item = document.createElement("li");
      item.dataset.phraseId = phrase.id;
      var use = document.createElement("button");
      use.type = "button";
      use.className = "phrase";
      use.dataset.phraseInsert = "";
      use.dataset.text = phrase.text;
      use.textContent = phrase.text;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "link";
      remove.dataset.phraseDelete = "";
      remove.setAttribute("aria-label", "Delete the phrase: " + phrase.text.slice(0, 60));
      remove.textContent = "Delete";
      item.appendChild(use);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(remove);
      return item;
    }

    function refreshEmpty() {
      if (empty) empty.hidden = list.children.length > 0;
    }

    list.addEventListener("click", function (event) {
      var use = event.target.closest("[data-phrase-insert]");
      if (use) { insert(use.dataset.text); return; }
      var remove = event.target.closest("[data-phrase-delete]");
      if (!remove) return;
      var item = remove.closest("[data-phrase-id]");
      remove.disabled = true;
      clearProblem(errors);
      call("DELETE", panel.dataset.url + "/" + encodeURIComponent(item.dataset.phraseId)).then(function (result) {
        if (!result.ok) { remove.disabled = false; showProblem(errors, result); return; }
        var next = item.nextElementSibling || item.previousElementSibling;
        item.remove();
        refreshEmpty();
        say("Phrase deleted.");
        var focusTo = next ? next.querySelector("[data-phrase-insert]") : input;
        if (focusTo) focusTo.focus();
      });
    });

    panel.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && lastField && document.body.contains(lastField)) {
        event.preventDefault();
        lastField.focus();
        if (lastStart !== null) lastField.setSelectionRange(lastStart, lastEnd === null ? lastStart : lastEnd);
        return;
      }
      // Up and down move between the phrases, as in a list.
      if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
      var current = event.target.closest("[data-phrase-insert]");
      if (!current) return;
      var buttons = Array.prototype.slice.call(list.querySelectorAll("[data-phrase-insert]"));
      var at = buttons.indexOf(current);
      var target = buttons[at + (event.key === "ArrowDown" ? 1 : -1)];
      if (target) { event.preventDefault(); target.focus(); }
    });

    function add() {
      var text = input.value.trim();
      clearProblem(errors);
      if (!text) {
        showProblem(errors, { status: 0, data: { message: "Write the phrase first." } });
        input.focus();
        return;
      }
      addButton.disabled = true;
      call("POST", panel.dataset.url, { text: text }).then(function (result) {
        addButton.disabled = false;
        if (!result.ok) { showProblem(errors, result); input.focus(); return; }
        list.appendChild(render(result.data));
        refreshEmpty();
        input.value = "";
        say("Phrase added to your phrases.");
        input.focus();
      });
    }
    addButton.addEventListener("click", add);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") { event.preventDefault(); add(); }
    });
  }

  function start() {
    document.querySelectorAll("[data-desk-findings]").forEach(initDesk);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start, { once: true });
  } else {
    start();
  }
})();

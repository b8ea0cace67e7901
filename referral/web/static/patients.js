/* The patient form: collects the fields into the API's JSON, shows the insurance and subscriber parts only when
   they apply, and reports the API's refusals in words (field labels, never field names). */
(function () {
  "use strict";

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var CSRF = csrfMeta ? csrfMeta.getAttribute("content") : "";

  // The words a person reads for each field the API may name in a refusal.
  var LABELS = {
    first_name: "First name", last_name: "Last name", birth_date: "Birth date", sex: "Sex",
    state: "State", address: "Address", line1: "Street address", line2: "Apartment or suite", city: "City",
    zip: "ZIP code", coverage: "Insurance", payer_id: "Payer id", payer_name: "Insurance company",
    member_id: "Member id", group_number: "Group number", relationship: "Relationship to the subscriber",
    subscriber: "Subscriber"
  };

  function words(path) {
    var parts = path.split(".").filter(function (part) { return part && part !== "json" && part !== "_schema"; });
    var named = parts.map(function (part) { return LABELS[part] || part.replace(/_/g, " "); });
    if (parts[0] === "coverage" && parts[1] === "subscriber" && parts.length > 2) {
      return "Subscriber's " + named.slice(2).join(", ").toLowerCase();
    }
    return named.length ? named[named.length - 1] : "";
  }

  function collect(errors, path, out) {
    if (!errors) return out;
    if (typeof errors === "string") {
      var label = words(path);
      out.push(label ? label + ": " + errors : errors);
      return out;
    }
    if (Array.isArray(errors)) { errors.forEach(function (e) { collect(e, path, out); }); return out; }
    Object.keys(errors).forEach(function (key) { collect(errors[key], path ? path + "." + key : key, out); });
    return out;
  }

  function showErrors(region, status, data) {
    region.textContent = "";
    var heading = document.createElement("p");
    heading.className = "error";
    var details = collect((data || {}).errors, "", []);
    heading.textContent = details.length ? "Please correct the details below." :
      ((data && data.message) || "The patient could not be saved (" + status + ").");
    region.appendChild(heading);
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

  function value(form, path) {
    var field = form.querySelector('[data-field="' + path + '"]');
    if (!field) return null;
    var text = field.value.trim();
    return text === "" ? null : text;
  }

  function address(form, prefix, withState) {
    var result = { line1: value(form, prefix + ".line1"), line2: value(form, prefix + ".line2"),
                   city: value(form, prefix + ".city"), zip: value(form, prefix + ".zip") };
    if (withState) result.state = value(form, prefix + ".state");
    var any = result.line1 || result.line2 || result.city || result.zip;
    if (!any) return null;
    Object.keys(result).forEach(function (key) { if (result[key] === null && key === "line2") delete result[key]; });
    return result;
  }

  function body(form) {
    var data = {};
    ["first_name", "last_name", "birth_date", "sex", "state"].forEach(function (name) {
      var text = value(form, name);
      if (text !== null) data[name] = text;
    });
    data.address = address(form, "address", false);
    if (!form.querySelector("[data-insured]").checked) {
      data.coverage = null;
      return data;
    }
    var coverage = { payer_name: value(form, "coverage.payer_name"), payer_id: value(form, "coverage.payer_id"),
                     member_id: value(form, "coverage.member_id"), group_number: value(form, "coverage.group_number"),
                     relationship: value(form, "coverage.relationship") || "self" };
    if (coverage.relationship !== "self") {
      var subscriber = { first_name: value(form, "coverage.subscriber.first_name"),
                         last_name: value(form, "coverage.subscriber.last_name"),
                         birth_date: value(form, "coverage.subscriber.birth_date"),
                         sex: value(form, "coverage.subscriber.sex") };
      if (form.querySelector("[data-same-address]").checked) {
        var home = address(form, "address", false);
        if (home) home.state = value(form, "state");
        subscriber.address = home;
      } else {
        subscriber.address = address(form, "coverage.subscriber.address", true);
      }
      var named = subscriber.first_name || subscriber.last_name || subscriber.birth_date;
      // Nothing typed about the subscriber: the API then says that the subscriber must be named.
      coverage.subscriber = named ? subscriber : null;
    }
    data.coverage = coverage;
    return data;
  }

  function initForm(form) {
    var errors = document.getElementById("patient-errors");
    var status = form.querySelector("[data-status]");
    var insured = form.querySelector("[data-insured]");
    var coverage = form.querySelector("[data-coverage]");
    var relationship = form.querySelector("[data-relationship]");
    var subscriber = form.querySelector("[data-subscriber]");
    var same = form.querySelector("[data-same-address]");
    var ownAddress = form.querySelector("[data-subscriber-address]");
    function sync() {
      coverage.hidden = !insured.checked;
      subscriber.hidden = relationship.value === "self";
      ownAddress.hidden = same.checked;
    }
    [insured, relationship, same].forEach(function (el) { el.addEventListener("change", sync); });
    sync();

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var save = form.querySelector("[data-save]");
      errors.hidden = true;
      errors.textContent = "";
      status.textContent = "Saving…";
      save.disabled = true;
      var method = form.getAttribute("data-mode") === "edit" ? "PATCH" : "POST";
      fetch(form.getAttribute("data-api"), {
        method: method, credentials: "same-origin",
        headers: { "Accept": "application/json", "Content-Type": "application/json", "X-CSRF-Token": CSRF },
        body: JSON.stringify(body(form))
      }).then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          save.disabled = false;
          status.textContent = "";
          if (!response.ok) { showErrors(errors, response.status, data); return; }
          var next = form.getAttribute("data-next");
          var url = "/patients/" + data.id + "?saved=1" + (next ? "&next=" + encodeURIComponent(next) : "");
          window.location.assign(url);
        });
      }, function () {
        save.disabled = false;
        status.textContent = "";
        showErrors(errors, 0, { message: "The server could not be reached. Check the connection and try again." });
      });
    });
  }

  document.querySelectorAll("[data-patient-form]").forEach(initForm);
})();

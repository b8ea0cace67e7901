/* Radiograph viewer: zoom, pan, brightness, contrast, invert and side-by-side comparison.
 *
 * Wires every [data-viewer] element rendered by templates/_viewer.html. The page runs under a CSP without
 * inline scripts or style attributes, so all styling of the image goes through the CSSOM
 * (element.style.transform / element.style.filter). State is mirrored into data attributes on each
 * .viewer-pane (data-zoom, data-brightness, data-contrast, data-invert, data-image-id) and on the section
 * (data-compare, data-link).
 */
(() => {
  "use strict";

  const MIN_ZOOM = 0.25;
  const MAX_ZOOM = 8;
  const ZOOM_STEP = 1.25;
  const PAN_STEP = 40;          // px per arrow key press; four times that with Shift
  const KEEP_VISIBLE = 48;      // px of the image that panning always leaves inside the stage
  const FILTER_MIN = 20;
  const FILTER_MAX = 300;
  const DOUBLE_TAP_MS = 350;
  const TAP_SLOP = 10;          // px a touch may move and still count as a tap
  const ANNOUNCE_DELAY_MS = 300;

  const clamp = (value, lo, hi) => Math.min(hi, Math.max(lo, value));
  const percent = (zoom) => `${Math.round(zoom * 100)}%`;

  function resetGeometry(pane) {
    pane.zoom = 1;
    pane.x = 0;
    pane.y = 0;
  }

  function resetFilters(pane) {
    pane.brightness = 100;
    pane.contrast = 100;
    pane.invert = false;
  }

  function copyView(from, to) {
    to.zoom = from.zoom;
    to.x = from.x;
    to.y = from.y;
    to.brightness = from.brightness;
    to.contrast = from.contrast;
    to.invert = from.invert;
  }

  /* Zoom by factor keeping the stage point (px, py), relative to the stage centre, over the same image point. */
  function zoomAt(pane, factor, px = 0, py = 0) {
    const zoom = clamp(pane.zoom * factor, MIN_ZOOM, MAX_ZOOM);
    const ratio = zoom / pane.zoom;
    pane.x = px - ratio * (px - pane.x);
    pane.y = py - ratio * (py - pane.y);
    pane.zoom = zoom;
  }

  /* Keep at least KEEP_VISIBLE px of the picture on the stage. The <img> box fills the stage and the
   * picture is fitted inside it (object-fit: contain), so its drawn size is the fitted size times zoom. */
  function clampPan(pane) {
    const width = pane.el.clientWidth;
    const height = pane.el.clientHeight;
    if (!width || !height) return;
    let drawnW = width;
    let drawnH = height;
    const naturalW = pane.img.naturalWidth;
    const naturalH = pane.img.naturalHeight;
    if (naturalW && naturalH) {
      const fit = Math.min(width / naturalW, height / naturalH);
      drawnW = naturalW * fit;
      drawnH = naturalH * fit;
    }
    const limitX = Math.max(0, (drawnW * pane.zoom + width) / 2 - KEEP_VISIBLE);
    const limitY = Math.max(0, (drawnH * pane.zoom + height) / 2 - KEEP_VISIBLE);
    pane.x = clamp(pane.x, -limitX, limitX);
    pane.y = clamp(pane.y, -limitY, limitY);
  }

  function render(pane) {
    const { el, img } = pane;
    img.style.transform = `translate(${pane.x.toFixed(1)}px, ${pane.y.toFixed(1)}px) scale(${pane.zoom.toFixed(4)})`;
    img.style.filter = `brightness(${pane.brightness}%) contrast(${pane.contrast}%) invert(${pane.invert ? 1 : 0})`;
    el.dataset.zoom = pane.zoom.toFixed(2);
    el.dataset.panX = String(Math.round(pane.x));
    el.dataset.panY = String(Math.round(pane.y));
    el.dataset.brightness = String(pane.brightness);
    el.dataset.contrast = String(pane.contrast);
    el.dataset.invert = String(pane.invert);
    el.dataset.imageId = pane.imageId;
  }

  function init(root) {
    if (!(root instanceof HTMLElement) || root.dataset.viewerReady === "true") return null;
    const paneEls = Array.from(root.querySelectorAll(".viewer-pane"));
    if (!paneEls.length) return null;
    root.dataset.viewerReady = "true";

    const find = (selector) => root.querySelector(selector);
    const controls = {
      zoomReadout: find("[data-zoom-readout]"),
      brightness: find('[data-control="brightness"]'),
      brightnessOut: find('[data-readout="brightness"]'),
      contrast: find('[data-control="contrast"]'),
      contrastOut: find('[data-readout="contrast"]'),
      invert: find('[data-control="invert"]'),
      compare: find('[data-control="compare"]'),
      link: find('[data-control="link"]'),
    };
    const statusEl = find("[data-viewer-status]");
    const thumbs = Array.from(root.querySelectorAll(".viewer-thumb[data-image-id]"));

    /* id -> {label, url, kind}: the thumbnails carry the catalogue; the panes fill any gap. */
    const catalog = new Map();
    for (const thumb of thumbs) {
      const label = thumb.dataset.label || thumb.textContent.trim();
      catalog.set(thumb.dataset.imageId, { label, url: thumb.dataset.previewUrl || "", kind: thumb.dataset.kind || "" });
    }

    const panes = paneEls.map((el, index) => {
      const img = el.querySelector(".viewer-image");
      const imageId = el.dataset.imageId || "";
      if (imageId && !catalog.has(imageId)) {
        catalog.set(imageId, {
          label: el.getAttribute("aria-label") || "",
          url: img.getAttribute("src") || img.dataset.src || "",
          kind: el.dataset.kind || "",
        });
      }
      return {
        el,
        img,
        index,
        side: index === 0 ? "Left" : "Right",
        slot: el.closest(".viewer-slot") || el,
        select: root.querySelector(`[data-pane-select="${index + 1}"]`),
        msg: el.querySelector("[data-pane-msg]"),
        imageId,
        zoom: 1, x: 0, y: 0, brightness: 100, contrast: 100, invert: false,
        pointers: new Map(),
        gesture: null,
        lastTap: 0,
      };
    });

    const state = {
      compare: false,
      link: controls.link ? controls.link.defaultChecked : true,
      active: panes[0],
    };
    let announceTimer = 0;

    function announce(text) {
      if (!statusEl || !text) return;
      window.clearTimeout(announceTimer);
      announceTimer = window.setTimeout(() => {
        statusEl.textContent = text;
      }, ANNOUNCE_DELAY_MS);
    }

    const visiblePanes = () => (state.compare ? panes : [panes[0]]);
    const otherPane = (pane) => panes.find((candidate) => candidate !== pane) || pane;
    const zoomText = (pane) => `Zoom ${percent(pane.zoom)}`;

    function syncToolbar() {
      const pane = state.active;
      if (controls.zoomReadout) controls.zoomReadout.textContent = percent(pane.zoom);
      for (const name of ["brightness", "contrast"]) {
        const input = controls[name];
        const out = controls[`${name}Out`];
        if (input) {
          input.value = String(pane[name]);
          input.setAttribute("aria-valuetext", `${pane[name]}%`);
        }
        if (out) out.textContent = `${pane[name]}%`;
      }
      if (controls.invert) controls.invert.checked = pane.invert;
    }

    /* Apply fn to the pane; with linked panes the other pane takes the same view. */
    function change(pane, fn, message) {
      fn(pane);
      clampPan(pane);
      if (state.link) {
        for (const other of panes) if (other !== pane) copyView(pane, other);
      }
      panes.forEach(render);
      syncToolbar();
      if (message) announce(typeof message === "function" ? message(pane) : message);
    }

    function setActive(pane) {
      if (state.active === pane && pane.el.dataset.active === "true") return;
      state.active = pane;
      for (const candidate of panes) {
        const on = candidate === pane;
        candidate.el.dataset.active = String(on);
        candidate.slot.classList.toggle("is-active", on);
      }
      syncToolbar();
    }

    function showMessage(pane, text) {
      if (!pane.msg) return;
      pane.msg.textContent = text || "";
      pane.msg.hidden = !text;
    }

    function loaded(pane) {
      pane.el.dataset.loading = "false";
      pane.el.dataset.error = "false";
      pane.el.removeAttribute("aria-busy");
      showMessage(pane, "");
      clampPan(pane);
      render(pane);
    }

    function failed(pane) {
      const info = catalog.get(pane.imageId);
      pane.el.dataset.loading = "false";
      pane.el.dataset.error = "true";
      pane.el.removeAttribute("aria-busy");
      showMessage(pane, "This image could not be loaded.");
      pane.el.setAttribute("aria-label", `${info ? info.label : "Image"} (could not be loaded)`);
      announce(`${info ? info.label : "Image"} could not be loaded`);
    }

    /* Point the pane's <img> at its image's preview, fetching only panes that are shown. */
    function show(pane) {
      const info = catalog.get(pane.imageId);
      if (!info || !info.url) return;
      const already = pane.img.getAttribute("src") === info.url;
      if (already && pane.img.complete) {
        if (pane.img.naturalWidth) loaded(pane);
        else failed(pane);
        return;
      }
      pane.el.dataset.loading = "true";
      pane.el.dataset.error = "false";
      pane.el.setAttribute("aria-busy", "true");
      showMessage(pane, "Loading…");
      if (!already) pane.img.src = info.url;
    }

    function updateThumbs() {
      const shown = visiblePanes();
      for (const thumb of thumbs) {
        const sides = shown.filter((pane) => pane.imageId === thumb.dataset.imageId).map((pane) => pane.side);
        thumb.setAttribute("aria-pressed", String(sides.length > 0));
        const where = thumb.querySelector("[data-thumb-where]");
        if (where) {
          where.textContent = state.compare && sides.length ? (sides.length > 1 ? "Left and right" : sides[0]) : "";
        }
      }
    }

    function loadImage(pane, imageId) {
      const info = catalog.get(imageId);
      if (!info) return;
      const changed = pane.imageId !== imageId;
      pane.imageId = imageId;
      pane.el.dataset.kind = info.kind;
      pane.el.setAttribute("aria-label", info.label);
      pane.img.alt = info.label;
      if (pane.select && pane.select.value !== imageId) pane.select.value = imageId;
      if (changed && !(state.compare && state.link)) {
        // A new picture starts fitted; compared pictures keep the shared, linked view so they stay aligned.
        change(pane, resetGeometry);
      } else {
        render(pane);
      }
      if (pane.index === 0 || state.compare) show(pane);
      updateThumbs();
      announce(state.compare ? `${pane.side} pane: ${info.label}` : info.label);
    }

    function setCompare(on) {
      const enabled = Boolean(on) && panes.length > 1;
      state.compare = enabled;
      root.dataset.compare = String(enabled);
      if (controls.compare) controls.compare.checked = enabled;
      for (const pane of panes.slice(1)) pane.slot.hidden = !enabled;
      if (enabled) {
        panes.slice(1).forEach(show);
      } else if (state.active !== panes[0]) {
        setActive(panes[0]);
      }
      // The stages changed size: keep every picture reachable.
      panes.forEach((pane) => { clampPan(pane); render(pane); });
      updateThumbs();
    }

    function setLink(on) {
      state.link = Boolean(on);
      root.dataset.link = String(state.link);
      if (controls.link) controls.link.checked = state.link;
      if (state.link) change(state.active, () => {});
    }

    /* ---- toolbar ---- */

    root.addEventListener("click", (event) => {
      const button = event.target.closest("[data-action]");
      if (!button || !root.contains(button)) return;
      const pane = state.active;
      switch (button.dataset.action) {
        case "zoom-in": change(pane, (p) => zoomAt(p, ZOOM_STEP), zoomText); break;
        case "zoom-out": change(pane, (p) => zoomAt(p, 1 / ZOOM_STEP), zoomText); break;
        case "fit": change(pane, resetGeometry, "Fitted, zoom 100%"); break;
        case "reset":
          change(pane, (p) => { resetGeometry(p); resetFilters(p); }, "Zoom, brightness, contrast and invert reset");
          break;
        default: break;
      }
    });

    for (const name of ["brightness", "contrast"]) {
      const input = controls[name];
      if (!input) continue;
      // The slider announces its own value (aria-valuetext), so no live-region message here.
      input.addEventListener("input", () => {
        const value = clamp(Math.round(Number(input.value)) || 100, FILTER_MIN, FILTER_MAX);
        change(state.active, (p) => { p[name] = value; });
      });
    }

    if (controls.invert) {
      controls.invert.addEventListener("change", () => {
        const on = controls.invert.checked;
        change(state.active, (p) => { p.invert = on; });
      });
    }
    if (controls.compare) {
      if (panes.length < 2) controls.compare.disabled = true;
      controls.compare.addEventListener("change", () => {
        setCompare(controls.compare.checked);
        announce(state.compare ? "Side by side on" : "Side by side off");
      });
    }
    if (controls.link) {
      controls.link.addEventListener("change", () => {
        setLink(controls.link.checked);
        announce(state.link ? "Panes linked" : "Panes not linked");
      });
    }

    /* ---- thumbnails and per-pane choice ---- */

    for (const thumb of thumbs) {
      thumb.addEventListener("click", (event) => {
        let target = state.compare ? state.active : panes[0];
        if (state.compare && event.shiftKey) target = otherPane(state.active);
        loadImage(target, thumb.dataset.imageId);
      });
    }

    for (const pane of panes) {
      if (pane.select) {
        pane.select.addEventListener("change", () => {
          setActive(pane);
          loadImage(pane, pane.select.value);
        });
      }
      pane.slot.addEventListener("focusin", () => setActive(pane));
    }

    /* ---- stage: pointer, wheel, keyboard ---- */

    function stagePoint(pane, event) {
      const rect = pane.el.getBoundingClientRect();
      return { x: event.clientX - rect.left - rect.width / 2, y: event.clientY - rect.top - rect.height / 2 };
    }

    function startGesture(pane, previous) {
      const points = Array.from(pane.pointers.values());
      if (points.length === 1) {
        pane.gesture = {
          mode: "pan",
          last: { ...points[0] },
          moved: previous ? Infinity : 0,   // after a pinch, lifting the last finger is not a tap
          startedAt: performance.now(),
        };
      } else if (points.length >= 2) {
        const [a, b] = points;
        pane.gesture = {
          mode: "pinch",
          startDist: Math.max(1, Math.hypot(a.x - b.x, a.y - b.y)),
          startMid: { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 },
          startZoom: pane.zoom,
          startX: pane.x,
          startY: pane.y,
          moved: Infinity,
        };
      } else {
        pane.gesture = null;
      }
    }

    function wireStage(pane) {
      const { el } = pane;

      el.addEventListener("dragstart", (event) => event.preventDefault());
      // iPadOS Safari: keep its own page pinch-zoom out of the stage (the pointer handlers zoom instead).
      el.addEventListener("gesturestart", (event) => event.preventDefault());

      el.addEventListener("pointerdown", (event) => {
        if (event.pointerType === "mouse" && event.button !== 0) return;
        setActive(pane);
        if (document.activeElement !== el) el.focus({ preventScroll: true });
        event.preventDefault();
        if (pane.pointers.size >= 2) return;
        try {
          el.setPointerCapture(event.pointerId);
        } catch (_) {
          // The pointer may already be gone; the gesture then simply ends at the next up/cancel.
        }
        pane.pointers.set(event.pointerId, stagePoint(pane, event));
        startGesture(pane, pane.pointers.size > 1);
        el.classList.add("is-dragging");
      });

      el.addEventListener("pointermove", (event) => {
        if (!pane.pointers.has(event.pointerId) || !pane.gesture) return;
        const point = stagePoint(pane, event);
        pane.pointers.set(event.pointerId, point);
        const gesture = pane.gesture;
        if (gesture.mode === "pan") {
          const dx = point.x - gesture.last.x;
          const dy = point.y - gesture.last.y;
          gesture.last = point;
          gesture.moved += Math.hypot(dx, dy);
          if (dx || dy) change(pane, (p) => { p.x += dx; p.y += dy; });
        } else {
          const [a, b] = Array.from(pane.pointers.values());
          const dist = Math.max(1, Math.hypot(a.x - b.x, a.y - b.y));
          const mid = { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
          change(pane, (p) => {
            const zoom = clamp(gesture.startZoom * (dist / gesture.startDist), MIN_ZOOM, MAX_ZOOM);
            // The image point that was under the starting midpoint follows the fingers' midpoint.
            p.x = mid.x - (zoom / gesture.startZoom) * (gesture.startMid.x - gesture.startX);
            p.y = mid.y - (zoom / gesture.startZoom) * (gesture.startMid.y - gesture.startY);
            p.zoom = zoom;
          });
        }
      });

      const endPointer = (event) => {
        if (!pane.pointers.has(event.pointerId)) return;
        const gesture = pane.gesture;
        pane.pointers.delete(event.pointerId);
        if (gesture && gesture.mode === "pinch") announce(zoomText(pane));
        if (pane.pointers.size) {
          startGesture(pane, true);
          return;
        }
        pane.gesture = null;
        el.classList.remove("is-dragging");
        if (event.type === "pointerup" && event.pointerType === "touch" && gesture && gesture.mode === "pan"
            && gesture.moved < TAP_SLOP && performance.now() - gesture.startedAt < DOUBLE_TAP_MS) {
          const now = performance.now();
          if (now - pane.lastTap < DOUBLE_TAP_MS) {
            pane.lastTap = 0;
            change(pane, resetGeometry, "Fitted, zoom 100%");
          } else {
            pane.lastTap = now;
          }
        }
      };
      el.addEventListener("pointerup", endPointer);
      el.addEventListener("pointercancel", endPointer);
      el.addEventListener("lostpointercapture", endPointer);

      el.addEventListener("dblclick", (event) => {
        event.preventDefault();
        setActive(pane);
        change(pane, resetGeometry, "Fitted, zoom 100%");
      });

      el.addEventListener("wheel", (event) => {
        event.preventDefault();
        setActive(pane);
        let delta = event.deltaY;
        if (event.deltaMode === 1) delta *= 16;                      // lines
        else if (event.deltaMode === 2) delta *= el.clientHeight;   // pages
        if (!delta) return;
        delta = clamp(delta, -300, 300);
        // Trackpad pinch arrives as a wheel event with ctrlKey and small deltas.
        const factor = Math.exp(-delta * (event.ctrlKey ? 0.01 : 0.002));
        const point = stagePoint(pane, event);
        change(pane, (p) => zoomAt(p, factor, point.x, point.y), zoomText);
      }, { passive: false });

      el.addEventListener("keydown", (event) => {
        if (shortcut(event, pane, true)) event.preventDefault();
      });

      pane.img.addEventListener("load", () => {
        if (pane.img.getAttribute("src")) loaded(pane);
      });
      pane.img.addEventListener("error", () => {
        if (pane.img.getAttribute("src")) failed(pane);
      });
      pane.img.addEventListener("dragstart", (event) => event.preventDefault());
      pane.img.draggable = false;
    }

    /* ---- keyboard shortcuts (listed on the page under "Keyboard shortcuts") ---- */

    const order = () => thumbs.map((thumb) => thumb.dataset.imageId);
    const FILTER_STEP = 10;

    function step(by) {
      const ids = order();
      if (!ids.length) return;
      const pane = state.compare ? state.active : panes[0];
      const at = ids.indexOf(pane.imageId);
      const next = ids[(at + by + ids.length) % ids.length];
      loadImage(pane, next);
      const info = catalog.get(next);
      if (info) announce(`${info.label} (${ids.indexOf(next) + 1} of ${ids.length})`);
    }

    function adjust(pane, name, by) {
      change(pane, (p) => { p[name] = clamp(p[name] + by, FILTER_MIN, FILTER_MAX); },
        (p) => `${name === "contrast" ? "Contrast" : "Brightness"} ${p[name]}%`);
    }

    /* One key press: true when it was a shortcut and has been acted on. ``onImage``: the key was pressed on a
     * focused image, where the arrow keys pan. Alt+Page Down / Page Up work from anywhere, even a text field. */
    function shortcut(event, pane, onImage) {
      if (event.ctrlKey || event.metaKey) return false;
      if (event.altKey) {
        if (event.key === "PageDown") { step(1); return true; }
        if (event.key === "PageUp") { step(-1); return true; }
        return false;
      }
      const panStep = event.shiftKey ? PAN_STEP * 4 : PAN_STEP;
      switch (event.key) {
        case "+": case "=": case "Add":
          change(pane, (p) => zoomAt(p, ZOOM_STEP), zoomText); return true;
        case "-": case "_": case "Subtract":
          change(pane, (p) => zoomAt(p, 1 / ZOOM_STEP), zoomText); return true;
        case "0": change(pane, resetGeometry, "Fitted, zoom 100%"); return true;
        case "i": case "I":
          change(pane, (p) => { p.invert = !p.invert; }, (p) => (p.invert ? "Inverted" : "Not inverted"));
          return true;
        case "n": case "N": case "]": step(1); return true;
        case "p": case "P": case "[": step(-1); return true;
        case "c": adjust(pane, "contrast", FILTER_STEP); return true;
        case "C": adjust(pane, "contrast", -FILTER_STEP); return true;
        case "b": adjust(pane, "brightness", FILTER_STEP); return true;
        case "B": adjust(pane, "brightness", -FILTER_STEP); return true;
        case "r": case "R":
          change(pane, (p) => { resetGeometry(p); resetFilters(p); }, "Zoom, brightness, contrast and invert reset");
          return true;
        default: break;
      }
      if (!onImage) return false;
      // Arrow keys move the view, as on a map: Right shows more of the right side.
      switch (event.key) {
        case "ArrowLeft": change(pane, (p) => { p.x += panStep; }); return true;
        case "ArrowRight": change(pane, (p) => { p.x -= panStep; }); return true;
        case "ArrowUp": change(pane, (p) => { p.y += panStep; }); return true;
        case "ArrowDown": change(pane, (p) => { p.y -= panStep; }); return true;
        default: return false;
      }
    }

    /* Fields and controls that use these keys themselves: typing there is never taken as a shortcut. */
    function typingIn(target) {
      if (!(target instanceof HTMLElement)) return false;
      if (target.isContentEditable) return true;
      if (target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement) return true;
      if (target instanceof HTMLInputElement) {
        return !["button", "checkbox", "radio", "submit", "reset", "file", "image"].includes(target.type);
      }
      return false;
    }

    function pageKey(event) {
      if (event.defaultPrevented || event.isComposing) return;
      if (panes.some((pane) => pane.el === event.target)) return;  // the image's own handler has it
      if (typingIn(event.target) && !event.altKey) return;
      if (event.target instanceof HTMLElement && event.target.closest("dialog, [role=dialog]")) return;
      if (shortcut(event, state.active, false)) event.preventDefault();
    }

    /* Another part of the page (the findings of an image) asks to see an image. */
    root.addEventListener("viewer:show", (event) => {
      const imageId = event.detail && event.detail.imageId;
      if (!imageId || !catalog.has(imageId)) return;
      if (visiblePanes().some((pane) => pane.imageId === imageId)) return;
      loadImage(state.compare ? state.active : panes[0], imageId);
    });

    panes.forEach(wireStage);

    // Start from the markup's state; a browser restoring form fields on reload must not desync it.
    for (const pane of panes) {
      pane.el.dataset.active = String(pane === state.active);
      pane.slot.classList.toggle("is-active", pane === state.active);
      if (pane.select && pane.imageId) pane.select.value = pane.imageId;
      render(pane);
    }
    setLink(state.link);
    setCompare(false);
    show(panes[0]);
    syncToolbar();
    root.viewerPageKey = pageKey;
    return root;
  }

  function initAll(scope = document) {
    const ready = Array.from(scope.querySelectorAll("[data-viewer]")).map(init).filter(Boolean);
    // With one viewer on the page, its shortcuts work from anywhere on the page (not only on the image).
    const all = document.querySelectorAll("[data-viewer][data-viewer-ready=true]");
    if (all.length === 1 && !document.documentElement.dataset.viewerKeys) {
      document.documentElement.dataset.viewerKeys = "true";
      const only = all[0];
      document.addEventListener("keydown", (event) => { if (only.viewerPageKey) only.viewerPageKey(event); });
    }
    return ready;
  }

  window.ReferralViewer = Object.freeze({ init, initAll });

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => initAll(), { once: true });
  } else {
    initAll();
  }
})();

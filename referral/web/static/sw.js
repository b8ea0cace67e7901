/* The site's service worker (served as /sw.js, scope "/"). It does one thing: a case page on which images are
   captured opens again without a connection, so the files waiting there (kept by capture-queue.js in
   IndexedDB) can be seen and are sent when the connection returns.

   - Case pages are kept only when the capture page asked for it (it adds itself to the cache); a kept page is
     refreshed from the network on every visit and served from the cache only when the network fails.
   - This site's scripts and styles (/web/static/) are fetched from the network first, and kept for offline.
   - Nothing else is touched: API calls and uploads go straight to the network.
   - Signing in or out (or being signed out) empties the cache: no one's case pages outlive their session. */
"use strict";

var PAGES = "referral-capture-pages-v1";
var CASE_PAGE = /^\/referrals\/[0-9a-fA-F-]{36}$/;
var STATIC = /^\/web\/static\/[A-Za-z0-9._-]+$/;

self.addEventListener("install", function () { self.skipWaiting(); });

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) { return name !== PAGES; })
      .map(function (name) { return caches.delete(name); }));
  }).then(function () { return self.clients.claim(); }));
});

function offlinePage() {
  return new Response(
    "This page was not kept on this device, and there is no connection. Files waiting to upload are still " +
    "kept here: open their case again once the connection is back.",
    { status: 503, headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" } });
}

function networkFirst(request, key, isPage) {
  return caches.open(PAGES).then(function (cache) {
    return fetch(request).then(function (response) {
      if (response.ok && !response.redirected && response.type === "basic") {
        // A page is refreshed only if it was asked to be kept; a script or style is always kept.
        var copy = response.clone();
        var keep = isPage ? cache.match(key).then(function (hit) { return !!hit; }) : Promise.resolve(true);
        keep.then(function (yes) { if (yes) return cache.put(key, copy); }).catch(function () {});
        return response;
      }
      return response;
    }, function () {
      return cache.match(key).then(function (hit) {
        if (hit) return hit;
        return isPage ? offlinePage() : Response.error();
      });
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && (url.pathname === "/login" || url.pathname === "/logout")) {
    event.waitUntil(caches.delete(PAGES));
    return;
  }
  if (request.method !== "GET") return;
  var isPage = request.mode === "navigate" && CASE_PAGE.test(url.pathname);
  if (isPage) {
    event.respondWith(networkFirst(request, url.origin + url.pathname, true));
  } else if (STATIC.test(url.pathname)) {
    event.respondWith(networkFirst(request, request.url, false));
  }
});

/// <reference lib="webworker" />
// The service worker: the app shell works without signal. Navigations are network-first with
// the cached shell as fallback; content-hashed assets are cache-first; GETs of the API listed in
// CACHED_API (the last worklist) are network-first with the last answer as fallback. Writes are
// never cached or replayed here: the offline queue (IndexedDB, ./queue.ts) owns them.
declare const self: ServiceWorkerGlobalScope;

const SHELL_CACHE = "salesops-shell-v1";
const API_CACHE = "salesops-api-v1";
const SHELL = ["/app/", "/app/manifest.webmanifest"];
// Reads kept for offline use: the rep's worklist and what it links to.
const CACHED_API = [
  /^\/v1\/leads(\?|$)/,
  /^\/v1\/leads\/[^/:]+(\?|$)/,
  /^\/v1\/deals(\?|$)/,
  /^\/v1\/inbox(\?|$)/,
  // What the visit form needs without signal: the tenant's mandatory action units.
  /^\/v1\/followUpPolicy$/,
];

/** The shell and the assets index.html names (so the first visit already works offline). */
async function cacheShell(): Promise<void> {
  const cache = await caches.open(SHELL_CACHE);
  await cache.addAll(SHELL);
  const index = await cache.match("/app/");
  const html = index ? await index.text() : "";
  const assets = [...html.matchAll(/(?:src|href)="(\/app\/assets\/[^"]+)"/g)].map((m) => m[1]);
  await cache.addAll([...new Set(assets)]);
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    cacheShell().then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => ![SHELL_CACHE, API_CACHE].includes(k)).map((k) => caches.delete(k))))
      // Navigation preload: the browser fetches index.html while this worker starts up, rather
      // than after (the worker's start-up otherwise delays every navigation).
      .then(() => self.registration.navigationPreload?.enable())
      .then(() => self.clients.claim()),
  );
});

/**
 * The network's answer (a navigation preload's when there is one), kept for later without
 * signal; the cached one when the network fails. The answer is handed to the page at once: the
 * cache write finishes after it (`event.waitUntil`), not before.
 */
async function networkFirst(event: FetchEvent, cacheName: string, fallback?: string): Promise<Response> {
  const request = event.request;
  const cache = await caches.open(cacheName);
  try {
    const preloaded = (await (event.preloadResponse as Promise<Response | undefined> | undefined)) ?? undefined;
    const response = preloaded ?? (await fetch(request));
    if (response.ok) event.waitUntil(cache.put(request, response.clone()));
    return response;
  } catch (err) {
    const cached = (await cache.match(request)) ?? (fallback ? await cache.match(fallback) : undefined);
    if (cached) return cached;
    throw err;
  }
}

async function cacheFirst(event: FetchEvent): Promise<Response> {
  const request = event.request;
  const cache = await caches.open(SHELL_CACHE);
  const cached = await cache.match(request);
  if (cached) return cached;
  const response = await fetch(request);
  if (response.ok) event.waitUntil(cache.put(request, response.clone()));
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith("/app")) {
    event.respondWith(networkFirst(event, SHELL_CACHE, "/app/"));
  } else if (url.pathname.startsWith("/app/assets/")) {
    event.respondWith(cacheFirst(event));
  } else if (CACHED_API.some((re) => re.test(url.pathname + url.search)) && !request.headers.has("x-no-cache")) {
    // Answers are per user: the cache is cleared on sign-out by the app (caches.delete(API_CACHE)).
    event.respondWith(networkFirst(event, API_CACHE));
  }
});

export {};

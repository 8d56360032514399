// Service worker: every file of the site is cached at install, then served from the cache (offline after the
// first visit). `edgeadapt web` fills in the version (a hash of the site's files) and the file list. The big files
// are cached as the site stores them (`.gz`, compressed): the page decompresses what it reads, online or not.
const VERSION = "__VERSION__";
const FILES = __FILES__;
const CACHE = `edgeadapt-${VERSION}`;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("edgeadapt-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  if (event.request.method !== "GET") return;
  event.respondWith(
    caches.open(CACHE).then(async (cache) => {
      const hit = await cache.match(event.request, { ignoreSearch: true });
      if (hit) return hit;
      if (event.request.mode === "navigate") {
        const page = await cache.match("./");
        if (page) return page;
      }
      return fetch(event.request);
    }),
  );
});

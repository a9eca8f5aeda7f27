/**
 * The page's service worker: keeps the page's own files (index.html, main.js, worker.js,
 * styles.css) so the page opens with no network, and then shows what IndexedDB holds (see
 * cache.ts). Network first, so a reachable server always gives the current page; the copy kept is
 * used only when the request fails. Nothing else (git, LFS) goes through it.
 */
// The few service-worker types used here (the project compiles with the DOM lib, not "webworker").
interface ExtendableEvent extends Event { waitUntil(p: Promise<unknown>): void }
interface FetchEvent extends ExtendableEvent { readonly request: Request; respondWith(r: Promise<Response>): void }
interface ServiceWorkerScope {
  readonly location: Location;
  readonly clients: { claim(): Promise<void> };
  skipWaiting(): Promise<void>;
  addEventListener(type: 'install' | 'activate', f: (ev: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', f: (ev: FetchEvent) => void): void;
}
const sw = self as unknown as ServiceWorkerScope;

/** The Cache Storage name (bump when the set of files changes). */
const SHELL_CACHE = 'git-theta-page-v1';
const SHELL = ['./', 'index.html', 'main.js', 'worker.js', 'styles.css'];

function isShell(url: URL): boolean {
  if (url.origin !== sw.location.origin) return false;
  const base = new URL('./', sw.location.href).pathname;
  if (!url.pathname.startsWith(base)) return false;
  return SHELL.includes(url.pathname.slice(base.length) || './');
}

sw.addEventListener('install', (ev) => {
  ev.waitUntil(caches.open(SHELL_CACHE).then((c) => c.addAll(SHELL)).then(() => sw.skipWaiting()));
});

sw.addEventListener('activate', (ev) => {
  ev.waitUntil(sw.clients.claim());
});

sw.addEventListener('fetch', (ev) => {
  const req = ev.request;
  if (req.method !== 'GET') return;
  const url = new URL(req.url);
  if (!isShell(url)) return;
  const key = url.pathname.endsWith('/') ? new URL('./', url).href : url.origin + url.pathname; // the query does not pick the file
  ev.respondWith((async () => {
    const cache = await caches.open(SHELL_CACHE);
    try {
      const res = await fetch(req);
      if (res.ok) await cache.put(key, res.clone());
      return res;
    } catch (e) {
      const kept = await cache.match(key);
      if (kept) return kept;
      throw e;
    }
  })());
});

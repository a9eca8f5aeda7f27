/**
 * The git-theta page: open a repository (URL query `?repo=<url>&from=<rev>&to=<rev>&path=<file>&lfs=<url>`;
 * without `repo`, the repository of the `git theta serve` that serves the page), list its branches,
 * commits and tracked models, and show the per-tensor diff of two revisions (default HEAD~1 → HEAD)
 * with a chart of relative change per layer. All git and numeric work happens in the worker.
 *
 * For tests and scripts: `window.__thetaDiff` is the diff JSON (the shape of `git theta diff --json`),
 * `window.__thetaStats` the download counts and timings, `window.__thetaProgress` the progress phases
 * shown, `document.body.dataset.state` is
 * idle | loading | ready | error, and every table row carries the numbers in data attributes.
 */
import type { ListedModel, RevisionsDiff } from '../repo/index.ts';
import type { FileDiff } from '../repo/diff-model.ts';
import type { TensorDiff } from '../theta/diff.ts';
import { fmtRel, layerChart } from './chart.ts';
import type { CommitInfo, DiffResult, OpenResult, ProgressMessage, Request, ResultOf } from './protocol.ts';

declare global {
  interface Window {
    __thetaDiff?: RevisionsDiff;
    __thetaStats?: { downloads: DiffResult['downloads']; diffMs: number; totalMs: number };
    /** Progress phases shown so far ('clone', 'download'). */
    __thetaProgress?: string[];
    /** How the repository was opened: from the IndexedDB cache or not, and what was fetched. */
    __thetaCache?: OpenResult['cache'];
  }
}

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

// ---- the worker, as promises ----

type Payload<T extends Request['type']> = Omit<Extract<Request, { type: T }>, 'id'>;

const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextId = 1;

worker.onmessage = (ev: MessageEvent) => {
  const m = ev.data;
  if (m.type === 'progress') return showProgress(m as ProgressMessage);
  const p = pending.get(m.id);
  if (!p) return;
  pending.delete(m.id);
  if (m.type === 'result') p.resolve(m.value);
  else p.reject(Object.assign(new Error(m.message), { code: m.code }));
};
worker.onerror = (ev) => {
  showError(`the worker failed: ${ev.message || 'could not load worker.js'}`);
  for (const p of pending.values()) p.reject(new Error('worker failed'));
  pending.clear();
};

function call<T extends Request['type']>(type: T, payload: Omit<Payload<T>, 'type'>): Promise<ResultOf<T>> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    worker.postMessage({ ...payload, type, id });
  });
}

// ---- status line ----

function showProgress(p: ProgressMessage): void {
  const seen = (window.__thetaProgress ??= []);
  if (!seen.includes(p.phase)) seen.push(p.phase);
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = false;
  if (p.total > 0) {
    bar.max = p.total;
    bar.value = Math.min(p.loaded, p.total);
  } else {
    bar.removeAttribute('value'); // indeterminate
  }
  const amount = p.phase === 'download'
    ? `${fmtBytes(p.loaded)} of ${fmtBytes(p.total)}`
    : p.total > 0 ? `${p.loaded}/${p.total}` : `${p.loaded}`;
  $('progress-label').textContent = `${p.phase === 'clone' ? 'Cloning' : 'Downloading'}: ${p.label} ${amount}`;
}

function status(text: string, busy: boolean): void {
  const bar = $<HTMLProgressElement>('progress');
  bar.hidden = !busy;
  if (busy) bar.removeAttribute('value');
  $('progress-label').textContent = text;
}

function showError(message: string): void {
  const e = $('error');
  e.textContent = message.replace(/\s+/g, ' ').trim();
  e.hidden = false;
  document.body.dataset.state = 'error';
  $<HTMLProgressElement>('progress').hidden = true;
  $('progress-label').textContent = '';
}

function clearError(): void {
  $('error').hidden = true;
  $('error').textContent = '';
}

// ---- formatting ----

export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  do { v /= 1024; u++; } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`;
}

function fmtNum(x: number | null | undefined): string {
  if (x === null || x === undefined) return '–';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e5 ? x.toPrecision(4) : x.toExponential(3);
}

function fmtCos(x: number | null | undefined): string {
  if (x === null || x === undefined) return '–';
  return x > 0.999999 && x < 1 ? x.toFixed(8) : x.toFixed(6);
}

function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

// ---- rendering ----

function renderBranches(o: OpenResult, selected: string): void {
  const sel = $<HTMLSelectElement>('branch');
  sel.replaceChildren(...o.branches.map((b) => h('option', { value: b.name }, b.name)));
  if (o.branches.some((b) => b.name === selected)) sel.value = selected;
  const revs = $('revs');
  revs.replaceChildren(
    h('option', { value: 'HEAD' }), h('option', { value: 'HEAD~1' }),
    ...o.branches.map((b) => h('option', { value: b.name })),
    ...o.tags.map((t) => h('option', { value: t })),
  );
}

function renderCommits(branch: string, commits: CommitInfo[]): void {
  $('commits-branch').textContent = branch;
  const revs = $('revs');
  for (const c of commits) revs.append(h('option', { value: c.oid.slice(0, 10) }, c.subject));
  $('commits').replaceChildren(...commits.map((c) => {
    const when = new Date(c.time * 1000).toISOString().slice(0, 16).replace('T', ' ');
    const use = (field: 'from' | 'to') => {
      const b = h('button', { type: 'button', class: 'mini', title: `diff ${field} this commit` }, field);
      b.onclick = () => {
        $<HTMLInputElement>(field).value = c.oid.slice(0, 10);
        void runDiff();
      };
      return b;
    };
    return h('li', { 'data-oid': c.oid },
      h('code', {}, c.oid.slice(0, 10)), ' ', h('span', { class: 'subject' }, c.subject), ' ',
      h('span', { class: 'muted' }, `${c.author}, ${when}`), ' ', use('from'), use('to'));
  }));
}

function renderModels(ref: string, models: ListedModel[], selected: string): void {
  $('models-ref').textContent = `at ${ref}`;
  $('models').replaceChildren(...(models.length ? models.map((m) =>
    h('li', { 'data-path': m.path, 'data-kind': m.kind },
      h('code', {}, m.path), ' ',
      h('span', { class: `badge ${m.kind}` }, m.kind === 'theta' ? 'git-theta' : 'git-lfs'), ' ',
      h('span', { class: 'muted' }, `${m.format}, ${fmtBytes(m.size)}${m.tensors !== undefined ? `, ${m.tensors} tensors` : ''}`)))
    : [h('li', { class: 'muted' }, 'no tracked models at this revision')]));
  const sel = $<HTMLSelectElement>('path');
  sel.replaceChildren(h('option', { value: '' }, 'all changed models'), ...models.map((m) => h('option', { value: m.path }, m.path)));
  if (selected && !models.some((m) => m.path === selected)) sel.append(h('option', { value: selected }, selected));
  sel.value = selected;
}

const NUMBER_FIELDS = ['l2', 'relative', 'maxabs', 'cosine'] as const;

function tensorRow(t: TensorDiff): HTMLTableRowElement {
  const attrs: Record<string, string> = { 'data-name': t.name, 'data-status': t.status, class: t.status };
  for (const f of NUMBER_FIELDS) {
    const v = t[f];
    if (typeof v === 'number') attrs[`data-${f}`] = String(v);
  }
  const shape = `[${t.shape.join(', ')}]`;
  const layout = t.old_dtype || t.old_shape
    ? `${t.old_dtype ?? t.dtype} [${(t.old_shape ?? t.shape).join(', ')}] → ${t.dtype} ${shape}`
    : `${t.dtype} ${shape}`;
  const rel = typeof t.relative === 'number' ? fmtRel(t.relative) : '–';
  return h('tr', attrs,
    h('td', { class: 'name' }, h('code', {}, t.name)),
    h('td', {}, h('span', { class: `status ${t.status}` }, t.status)),
    h('td', { class: 'layout' }, layout),
    h('td', {}, t.update ?? '–'),
    h('td', { class: 'num' }, fmtNum(t.l2)),
    h('td', { class: 'num', title: typeof t.relative === 'number' ? String(t.relative) : '' }, rel),
    h('td', { class: 'num' }, fmtNum(t.maxabs)),
    h('td', { class: 'num' }, fmtCos(t.cosine)));
}

function renderFile(f: FileDiff, showUnchanged: boolean): HTMLElement {
  const s = f.summary;
  const summary = h('p', { class: 'summary' },
    ...(['modified', 'added', 'removed', 'unchanged'] as const).map((k) => h('span', { class: `status ${k}` }, `${s[k]} ${k}`)));
  const rows = f.tensors.filter((t) => showUnchanged || t.status !== 'unchanged');
  const head = h('tr', {}, ...['tensor', 'status', 'dtype / shape', 'update', '‖Δ‖', '‖Δ‖ / ‖θ_old‖', 'max |Δ|', 'cosine'].map((c) => h('th', {}, c)));
  const table = h('table', { class: 'tensors' }, h('thead', {}, head), h('tbody', {}, ...rows.map(tensorRow)));
  const hasChart = f.tensors.some((t) => t.status !== 'unchanged');
  return h('article', { class: 'file', 'data-path': f.path },
    h('h2', {}, h('code', {}, f.path), ' ', h('span', { class: 'muted' }, `${f.format} · ${f.from} → ${f.to}${f.approx ? ' · approximate' : ''}`)),
    summary,
    ...(hasChart ? [h('h3', {}, 'Largest relative change per layer'), h('div', { class: 'chart-box' }, layerChart(f.tensors))] : []),
    rows.length ? table : h('p', { class: 'muted' }, 'no tensor changed'));
}

function renderDiff(r: DiffResult): void {
  const showUnchanged = new URLSearchParams(location.search).get('all') === '1';
  const out = $('results');
  if (!r.diff.files.length) {
    out.replaceChildren(h('p', { class: 'panel muted' }, 'no tracked model differs between these revisions'));
  } else {
    out.replaceChildren(...r.diff.files.map((f) => renderFile(f, showUnchanged)));
  }
}

// ---- flow ----

const t0 = performance.now();
let repo: OpenResult | null = null;

function params() {
  const q = new URLSearchParams(location.search);
  return { repo: q.get('repo'), lfs: q.get('lfs'), from: q.get('from') || 'HEAD~1', to: q.get('to') || 'HEAD', path: q.get('path') || '' };
}

function syncUrl(): void {
  const q = new URLSearchParams(location.search);
  if (repo && (q.get('repo') || '') !== '') q.set('repo', repo.url);
  q.set('from', $<HTMLInputElement>('from').value);
  q.set('to', $<HTMLInputElement>('to').value);
  const path = $<HTMLSelectElement>('path').value;
  if (path) q.set('path', path);
  else q.delete('path');
  history.replaceState(null, '', `${location.pathname}?${q}`);
}

/** Where the last answer of `.theta/serve.json` is kept, for opening the cached clone offline. */
const SERVED_KEY = 'git-theta:served-repo';

/** The repository of the `git theta serve` serving this page (the last one known when offline), or null. */
async function servedRepo(): Promise<string | null> {
  try {
    const r = await fetch(new URL('.theta/serve.json', location.origin + '/'));
    if (!r.ok) return null;
    const info = (await r.json()) as { repo?: string };
    const url = typeof info.repo === 'string' ? new URL(info.repo, location.origin).href : null;
    if (url) localStorage.setItem(SERVED_KEY, url);
    return url;
  } catch {
    return localStorage.getItem(SERVED_KEY); // the server is gone: the cache may still hold its clone
  }
}

// The page's own files, kept so it opens offline (sw.ts); not where there is no service worker.
if ('serviceWorker' in navigator && location.protocol !== 'file:') {
  navigator.serviceWorker.register(new URL('./sw.js', import.meta.url)).catch(() => {});
}

async function loadBranch(branch: string): Promise<void> {
  renderCommits(branch, await call('log', { ref: branch, depth: 50 }));
}

async function loadModels(ref: string, selected: string): Promise<void> {
  try {
    renderModels(ref, await call('models', { ref }), selected);
  } catch (e) {
    renderModels(ref, [], selected);
    throw e;
  }
}

let diffRunning = false;
async function runDiff(): Promise<void> {
  if (diffRunning) return;
  diffRunning = true;
  const from = $<HTMLInputElement>('from').value.trim();
  const to = $<HTMLInputElement>('to').value.trim();
  const path = $<HTMLSelectElement>('path').value;
  clearError();
  document.body.dataset.state = 'loading';
  $<HTMLButtonElement>('diff-button').disabled = true;
  syncUrl();
  try {
    status(`Diffing ${from} → ${to}…`, true);
    const r = await call('diff', { from, to, paths: path ? [path] : undefined });
    window.__thetaDiff = r.diff;
    window.__thetaStats = { downloads: r.downloads, diffMs: r.ms, totalMs: performance.now() - t0 };
    renderDiff(r);
    status(`Diff ${from} → ${to} in ${(r.ms / 1000).toFixed(2)} s; downloaded ${r.downloads.objects} LFS objects (${fmtBytes(r.downloads.bytes)}) so far`, false);
    document.body.dataset.state = 'ready';
    void loadModels(to, path).catch(() => {});
  } catch (e) {
    $('results').replaceChildren();
    window.__thetaDiff = undefined;
    showError(`git-theta: ${(e as Error).message}`);
  } finally {
    diffRunning = false;
    $<HTMLButtonElement>('diff-button').disabled = false;
  }
}

async function start(): Promise<void> {
  const p = params();
  $<HTMLInputElement>('from').value = p.from;
  $<HTMLInputElement>('to').value = p.to;
  document.body.dataset.state = 'loading';
  const url = p.repo ?? (await servedRepo());
  if (!url) {
    showError('git-theta: no repository: enter its URL above, or open this page with ?repo=<url>');
    return;
  }
  $<HTMLInputElement>('repo-url').value = url;
  try {
    status(`Cloning ${url}…`, true);
    repo = await call('open', { url, lfsUrl: p.lfs });
    $('app').hidden = false;
    $('footer-note').textContent = `git: ${repo.url} · LFS: ${repo.lfsUrl ?? 'none'}`;
    window.__thetaCache = repo.cache;
    $('cache-note').textContent = cacheNote(repo.cache);
    const branch = repo.head ?? repo.branches[0]?.name ?? 'HEAD';
    renderBranches(repo, branch);
    renderModels(p.to, [], p.path);
    await loadBranch(branch);
  } catch (e) {
    showError(`git-theta: ${(e as Error).message}`);
    return;
  }
  await runDiff();
}

function cacheNote(c: OpenResult['cache']): string {
  if (!c.persistent) return '· not cached (this browser refused IndexedDB)';
  switch (c.source) {
    case 'cloned': return '· cloned; kept in this browser';
    case 'fetched': return '· from this browser\'s cache; new commits fetched';
    case 'current': return '· from this browser\'s cache; up to date';
    case 'offline': return `· offline: the cached copy as it was (${c.offlineReason ?? 'the server did not answer'})`;
  }
}

$('clear-cache').addEventListener('click', () => {
  status('Clearing the cache…', true);
  localStorage.removeItem(SERVED_KEY);
  call('clear', {}).then(() => location.reload(), (e) => showError(`git-theta: could not clear the cache: ${(e as Error).message}`));
});
$('repo-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const url = $<HTMLInputElement>('repo-url').value.trim();
  if (!url) return;
  const q = new URLSearchParams({ repo: url });
  location.search = q.toString(); // a fresh page: a fresh clone and worker
});
$('diff-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void runDiff();
});
$<HTMLSelectElement>('branch').addEventListener('change', (ev) => {
  const b = (ev.target as HTMLSelectElement).value;
  $<HTMLInputElement>('to').value = b;
  $<HTMLInputElement>('from').value = `${b}~1`;
  void loadBranch(b).then(runDiff, (e) => showError(`git-theta: ${(e as Error).message}`));
});

void start();

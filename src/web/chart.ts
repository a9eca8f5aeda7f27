/**
 * The chart of relative change per layer: inline SVG, one horizontal bar per layer. A layer is the
 * tensor name up to its first numeric component (`h.3.attn.c_attn.weight` → `h.3`, `0.weight` →
 * `0`), else the name without its last component (`wte.weight` → `wte`). A layer's bar is the
 * largest relative change ‖Δ‖/‖θ_old‖ among its modified tensors (unchanged tensors contribute
 * nothing and their norms are not known from the diff, so a norm-weighted mean is not possible).
 */
import type { TensorDiff } from '../theta/diff.ts';

export interface LayerBar {
  layer: string;
  /** Largest relative change of a modified tensor (0 when none changed). */
  relative: number;
  modified: number;
  added: number;
  removed: number;
  tensors: number;
}

export function layerOf(name: string): string {
  const parts = name.split('.');
  const i = parts.findIndex((p) => /^\d+$/.test(p));
  if (i >= 0) return parts.slice(0, i + 1).join('.');
  return parts.length > 1 ? parts.slice(0, -1).join('.') : name;
}

/** Natural order: `h.2` before `h.10`. */
const collator = new Intl.Collator('en', { numeric: true });

export function layerBars(tensors: TensorDiff[]): LayerBar[] {
  const bars = new Map<string, LayerBar>();
  for (const t of tensors) {
    const layer = layerOf(t.name);
    let b = bars.get(layer);
    if (!b) bars.set(layer, (b = { layer, relative: 0, modified: 0, added: 0, removed: 0, tensors: 0 }));
    b.tensors++;
    if (t.status === 'modified') {
      b.modified++;
      if (typeof t.relative === 'number' && Number.isFinite(t.relative)) b.relative = Math.max(b.relative, t.relative);
    } else if (t.status === 'added') b.added++;
    else if (t.status === 'removed') b.removed++;
  }
  return [...bars.values()].sort((a, b) => collator.compare(a.layer, b.layer));
}

const SVG = 'http://www.w3.org/2000/svg';

function el<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text?: string): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

export function fmtRel(x: number): string {
  if (x === 0) return '0';
  return x >= 1e-4 ? `${(x * 100).toPrecision(3)}%` : x.toExponential(2);
}

/** The chart for one file's tensors. */
export function layerChart(tensors: TensorDiff[]): SVGSVGElement {
  const bars = layerBars(tensors);
  const row = 18;
  const labelW = Math.min(220, 12 + 7 * Math.max(4, ...bars.map((b) => b.layer.length)));
  const barW = 420;
  const valueW = 150;
  const width = labelW + barW + valueW;
  const height = bars.length * row + 8;
  const max = Math.max(0, ...bars.map((b) => b.relative)) || 1;
  const svg = el('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'largest relative change per layer' });
  bars.forEach((b, i) => {
    const y = 4 + i * row;
    const g = el('g', { 'data-layer': b.layer, 'data-relative': b.relative });
    const title = `${b.layer}: ${b.tensors} tensors, ${b.modified} modified` +
      (b.added ? `, ${b.added} added` : '') + (b.removed ? `, ${b.removed} removed` : '') +
      (b.modified ? `; largest relative change ${b.relative.toPrecision(4)}` : '');
    g.appendChild(el('title', {}, title));
    g.appendChild(el('text', { x: labelW - 8, y: y + row * 0.68, 'text-anchor': 'end', class: 'label' }, b.layer));
    g.appendChild(el('rect', { x: labelW, y: y + 2, width: barW, height: row - 4, class: 'track' }));
    const w = b.relative > 0 ? Math.max(2, (b.relative / max) * barW) : 0;
    if (w) g.appendChild(el('rect', { x: labelW, y: y + 2, width: w, height: row - 4, class: 'bar' }));
    const note = b.modified ? fmtRel(b.relative) : b.added || b.removed ? [b.added && `+${b.added}`, b.removed && `−${b.removed}`].filter(Boolean).join(' ') + ' tensors' : 'unchanged';
    g.appendChild(el('text', { x: labelW + barW + 8, y: y + row * 0.68, class: b.modified ? 'value' : 'value muted' }, note));
    svg.appendChild(g);
  });
  return svg;
}

import type { RampResult } from './throughput';

/**
 * Latency against offered load as a standalone SVG: p50 (dashed) and p99
 * (solid) per worker count, log-scaled latency, the ramp's limit as a line.
 */
export function latencyPlot(ramps: RampResult[], limitMs: number, title: string): string {
  const W = 720;
  const H = 420;
  const m = { l: 64, r: 150, t: 40, b: 52 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const points = ramps.flatMap((r) => r.levels);
  const xMax = niceCeil(Math.max(1000, ...points.map((p) => p.offered)));
  const lat = points.flatMap((p) => [p.latency.p50, p.latency.p99]).filter((v) => v > 0);
  const yMin = Math.pow(10, Math.floor(Math.log10(Math.min(0.5, ...lat))));
  const yMax = Math.pow(10, Math.ceil(Math.log10(Math.max(limitMs * 2, ...lat))));
  const x = (v: number): number => m.l + (v / xMax) * pw;
  const y = (v: number): number => m.t + ph - ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * ph;
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd'];
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${m.l}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let d = yMin; d <= yMax; d *= 10) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(d)}" y2="${y(d)}" stroke="#ddd"/>`);
    out.push(`<text x="${m.l - 6}" y="${y(d) + 4}" text-anchor="end">${d >= 1 ? d : d.toFixed(1)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const v = (xMax / 5) * i;
    out.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${m.t}" y2="${m.t + ph}" stroke="#eee"/>`);
    out.push(`<text x="${x(v)}" y="${m.t + ph + 18}" text-anchor="middle">${Math.round(v)}</text>`);
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(limitMs)}" y2="${y(limitMs)}" stroke="#999" stroke-dasharray="2,3"/>`);
  out.push(`<text x="${m.l + pw - 4}" y="${y(limitMs) - 4}" text-anchor="end" fill="#666">limit ${limitMs} ms</text>`);
  out.push(`<text x="${m.l + pw / 2}" y="${H - 12}" text-anchor="middle">offered load, reports/s</text>`);
  out.push(`<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">barrier latency, ms (log)</text>`);
  ramps.forEach((r, i) => {
    const c = colors[i % colors.length] as string;
    for (const [key, dash] of [
      ['p99', ''],
      ['p50', '5,4'],
    ] as const) {
      const pts = r.levels.map((l) => `${x(l.offered).toFixed(1)},${y(l.latency[key]).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${pts}" fill="none" stroke="${c}" stroke-width="2"${dash ? ` stroke-dasharray="${dash}"` : ''}/>`);
      for (const l of r.levels) out.push(`<circle cx="${x(l.offered).toFixed(1)}" cy="${y(l.latency[key]).toFixed(1)}" r="3" fill="${c}"/>`);
    }
    const ly = m.t + 14 + i * 36;
    out.push(`<line x1="${m.l + pw + 12}" x2="${m.l + pw + 36}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    out.push(`<text x="${m.l + pw + 40}" y="${ly + 4}">${r.workers} worker${r.workers > 1 ? 's' : ''} p99</text>`);
    out.push(`<line x1="${m.l + pw + 12}" x2="${m.l + pw + 36}" y1="${ly + 16}" y2="${ly + 16}" stroke="${c}" stroke-width="2" stroke-dasharray="5,4"/>`);
    out.push(`<text x="${m.l + pw + 40}" y="${ly + 20}">${r.workers} worker${r.workers > 1 ? 's' : ''} p50</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function niceCeil(v: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const k of [1, 2, 2.5, 5, 10]) if (k * p >= v) return k * p;
  return 10 * p;
}

function esc(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] as string);
}

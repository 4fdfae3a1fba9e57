import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT, assertBuilt } from '../helpers/processes';
import { runBench } from './run-bench';

/**
 * Smoke test of `npm run bench:waiters` (issue 23's fan-out table) at a small
 * N: it runs the built bench as its own process and checks what it measured
 * for each kind: every wait released with the right answer, no connection
 * error, and deliveries into the scheduler that do not grow with N (the
 * waits of one node share one report and one subscription). No time is judged.
 */
const N = 40;
let out: string;
beforeAll(() => {
  assertBuilt();
  out = mkdtempSync(path.join(os.tmpdir(), 'cs-bench-waiters-'));
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

interface Row {
  kind: string;
  n: number;
  deliveries: number;
  release: { n: number };
  errors: Record<string, number>;
  wrongAnswers: number;
  unrelatedOpening: { n: number };
}

test(`bench:waiters at N = ${N}: every message and barrier wait released, a handful of deliveries, no errors`, async () => {
  const { code, stdout, stderr } = await runBench(path.join(ROOT, 'dist/bench/waiters.js'), [String(N)], { ...process.env, CS_BENCH_OUT: out, CS_BENCH_BEFORE_CLI: '' });
  expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
  expect(stdout).toMatch(/\| message \| 40 \| after \|/);
  const [file] = readdirSync(out);
  const { rows } = JSON.parse(readFileSync(path.join(out, file!), 'utf8')) as { rows: Row[] };
  expect(rows.map((r) => [r.kind, r.n])).toEqual([
    ['message', N],
    ['barrier', N],
  ]);
  for (const r of rows) {
    expect({ kind: r.kind, errors: r.errors, wrong: r.wrongAnswers, released: r.release.n }).toEqual({ kind: r.kind, errors: {}, wrong: 0, released: N });
    // One report reply and one state or resolution (a few more at most): never one per wait.
    expect(r.deliveries).toBeLessThan(N / 4);
    expect(r.unrelatedOpening.n).toBeGreaterThan(0);
  }
}, 180_000);

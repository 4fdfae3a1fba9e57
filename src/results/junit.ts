import type { ClusterResult, NodeResult, StepResult } from './result';

/** Text for an XML attribute or element: the five special characters escaped, characters XML 1.0 forbids dropped. */
export function xmlText(s: string): string {
  return (
    s
      // eslint-disable-next-line no-control-regex -- removing what XML cannot carry is the point
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

const attrs = (a: Record<string, string | number | undefined>): string =>
  Object.entries(a)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlText(String(v))}"`)
    .join('');

const seconds = (ms: number | undefined): string => ((ms ?? 0) / 1000).toFixed(3);

interface Case {
  classname: string;
  name: string;
  ms?: number;
  outcome?: { tag: 'failure' | 'error' | 'skipped'; type: string; message: string };
}

function caseXml(c: Case): string {
  const head = `    <testcase${attrs({ classname: c.classname, name: c.name, time: seconds(c.ms) })}`;
  if (!c.outcome) return `${head}/>`;
  const { tag, type, message } = c.outcome;
  return `${head}>\n      <${tag}${attrs({ type: tag === 'skipped' ? undefined : type, message })}/>\n    </testcase>`;
}

function nodeCases(cid: string, n: NodeResult): Case[] {
  const classname = `${cid}.${n.host || n.job}`;
  const label = `${n.job} (${n.roles})`;
  const why = n.reason ?? n.ended;
  if (n.programs.length === 0) {
    const outcome = n.passed ? undefined : { tag: n.ended === 'test_failed' ? ('failure' as const) : ('error' as const), type: n.ended, message: why };
    return [{ classname, name: `node ${label}`, outcome }];
  }
  return n.programs.map((p) => {
    const name = `${p.kind} ${p.name} on ${label}`;
    const exit = p.exit !== null ? `exited with code ${p.exit}` : p.signal ? `killed by ${p.signal}` : 'did not exit';
    if (p.result === 'passed' || p.result === 'exited') return { classname, name, ms: p.ms };
    if (p.result === 'failed' || p.result === 'not_started') return { classname, name, ms: p.ms, outcome: { tag: 'failure' as const, type: p.result, message: `${p.kind} ${p.name} ${exit}` } };
    // Stopped by the end of the node's job: fine when the node passed, else the cluster's abort stopped it.
    if (n.passed) return { classname, name, ms: p.ms };
    return { classname, name, ms: p.ms, outcome: { tag: 'error' as const, type: n.ended, message: `${p.kind} ${p.name} ${p.result} (${exit}): ${why}` } };
  });
}

function stepCase(cid: string, s: StepResult): Case {
  const outcome =
    s.result === 'pass'
      ? undefined
      : s.result === 'fail'
        ? { tag: 'failure' as const, type: s.kind, message: s.detail ?? 'failed' }
        : { tag: 'skipped' as const, type: s.kind, message: 'not resolved' };
  return { classname: `${cid}.multinode`, name: s.name, ms: s.took_ms, outcome };
}

/**
 * The result as JUnit XML: one `<testsuite>` for the cluster (its last
 * attempt), with one test case per node program and per barrier and named
 * sync (as LAVA's `multinode-*` cases), and one skipped case per earlier
 * attempt that was retried. CI dashboards and SQUAD-like tools read it as is.
 */
export function junitXml(r: ClusterResult): string {
  const cid = r.attempt_cluster;
  const cases: Case[] = [
    ...r.attempts.slice(0, -1).map((a) => ({
      classname: `${r.cluster}.attempts`,
      name: `multinode-attempt-${a.attempt} (${a.cluster})`,
      ms: (a.ended_at ?? a.created) - a.created,
      outcome: { tag: 'skipped' as const, type: 'retried', message: `ended ${a.end_cause ?? 'open'}${a.reason ? `: ${a.reason}` : ''}; retried as attempt ${a.attempt + 1}` },
    })),
    ...r.nodes.flatMap((n) => nodeCases(cid, n)),
    ...r.barriers.map((s) => stepCase(cid, s)),
    ...r.syncs.map((s) => stepCase(cid, s)),
  ];
  const count = (tag: string): number => cases.filter((c) => c.outcome?.tag === tag).length;
  const totals = { tests: cases.length, failures: count('failure'), errors: count('error'), skipped: count('skipped') };
  const props: Record<string, string | undefined> = {
    verdict: r.verdict ?? r.state,
    end_cause: r.end_cause ?? undefined,
    abort_reason: r.abort_reason,
    attempt: `${r.attempt} of ${r.attempts.length}`,
    spec: r.spec,
    rerun_of: r.rerun_of,
  };
  const time = seconds((r.ended_at ?? Date.now()) - r.created);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attrs({ name: 'cluster-sync', ...totals, time })}>`,
    `  <testsuite${attrs({ name: `cluster ${r.cluster}`, id: cid, ...totals, time, timestamp: new Date(r.created).toISOString() })}>`,
    '    <properties>',
    ...Object.entries(props)
      .filter(([, v]) => v !== undefined)
      .map(([name, value]) => `      <property${attrs({ name, value })}/>`),
    '    </properties>',
    ...cases.map(caseXml),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

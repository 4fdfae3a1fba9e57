import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { NodeJob } from '../split/node-job';

/**
 * The `lava-*` commands a program finds first on its PATH, written for one
 * node job. `lava-self`, `lava-role` and `lava-group` are plain shell with
 * the node job's facts written in (no round trip); `lava-send`, `lava-wait`,
 * `lava-wait-all` and `lava-sync` run the small client (`lava-cli.js`) with
 * node, which talks to the agent's socket.
 */

/** Single-quoted for sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The built client: beside this file, or (tests running TypeScript) in dist/. */
export function lavaCliPath(): string {
  const here = path.join(__dirname, 'lava-cli.js');
  if (existsSync(here)) return here;
  return path.resolve(__dirname, '../../dist/src/sync/lava-cli.js');
}

/** `job TAB role` lines, one per node and role, in job order (LAVA's lava-group format). */
export function groupLines(group: Record<string, string>): string[] {
  return Object.entries(group).flatMap(([job, roles]) =>
    roles
      .split(/\s+/)
      .filter(Boolean)
      .map((r) => `${job}\t${r}`),
  );
}

export function writeSyncBin(dir: string, job: NodeJob, socketPath: string): void {
  mkdirSync(dir, { recursive: true });
  const node = shQuote(process.execPath);
  const cli = shQuote(lavaCliPath());
  const roles = [...new Set(Object.values(job.group).flatMap((r) => r.split(/\s+/).filter(Boolean)))].join(' ');
  const group = groupLines(job.group).join('\n');
  const files: Record<string, string> = {
    'lava-self': `#!/bin/sh\n# LAVA MultiNode: this node's name (its node job id).\nprintf '%s\\n' ${shQuote(job.job_id)}\n`,
    'lava-role': [
      '#!/bin/sh',
      '# LAVA MultiNode: this node\'s role(s); "list": every role of the cluster.',
      'case "$#:$1" in',
      `0:) printf '%s\\n' ${shQuote(job.node_roles)} ;;`,
      `1:list) printf '%s\\n' ${shQuote(roles)} ;;`,
      '*) echo "usage: lava-role [list]" >&2; exit 2 ;;',
      'esac',
      '',
    ].join('\n'),
    'lava-group': [
      '#!/bin/sh',
      '# LAVA MultiNode: "JOB<TAB>ROLE" per node and role; with ROLE, the jobs of that role (exit 1 when none).',
      `group=${shQuote(group)}`,
      'if [ $# -eq 0 ]; then printf \'%s\\n\' "$group"; exit 0; fi',
      '[ $# -eq 1 ] || { echo "usage: lava-group [ROLE]" >&2; exit 2; }',
      "printf '%s\\n' \"$group\" | awk -F '\\t' -v r=\"$1\" '$2 == r { print $1; n++ } END { exit n ? 0 : 1 }'",
      '',
    ].join('\n'),
  };
  for (const cmd of ['lava-send', 'lava-wait', 'lava-wait-all', 'lava-sync']) {
    files[cmd] = `#!/bin/sh\nCS_SYNC_SOCKET=${shQuote(socketPath)} exec ${node} ${cli} ${cmd} "$@"\n`;
  }
  for (const [name, text] of Object.entries(files)) {
    const p = path.join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, 0o755);
  }
}

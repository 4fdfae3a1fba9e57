import { Subjects, checkToken } from './subjects';

/**
 * The NATS users of a lab and exactly the subjects each process needs
 * (DESIGN §8), for `cluster-sync nats-config`:
 *
 * - `worker`: serves reports, queries, takes and dones (queue group), hears
 *   events (the dispatcher acts on dead nodes), publishes barrier answers and
 *   events, and answers the requests it received (`allow_responses`).
 * - `scheduler`: the legacy endpoint reports and queries for unmodified lkp
 *   nodes and waits on barrier answers and events; `POST /jobs` publishes the
 *   `submitted` event; `/ui` and `/events` follow events. Replies on its own
 *   inbox prefix only.
 * - `ops` (`watch`, `submit --watch`): reads events and barrier answers; publishes nothing.
 * - `node-<testbox>`, one per testbox: reports and queries (any cluster: the
 *   workers check the cluster's token), takes and dones of its own testbox
 *   queue only, barrier answers and named-message states (they carry no
 *   secret; message data is visible to every node user), and replies on its
 *   own inbox prefix only, so it reads no other node's take reply (node job,
 *   token).
 */
export type LabRole = 'worker' | 'scheduler' | 'ops' | 'node';

export interface Permissions {
  publish: { allow?: string[]; deny?: string[] };
  subscribe: { allow: string[] };
  /** May publish to the reply subject of a request it received (once). */
  allow_responses?: boolean;
}

export interface LabUser {
  /** `worker`, `scheduler`, `ops` or `node-<testbox>`: names its files and its inbox prefix. */
  name: string;
  role: LabRole;
  testbox?: string;
  /** What the process sets as `CS_NATS_INBOX_PREFIX`. */
  inboxPrefix: string;
  permissions: Permissions;
}

export function inboxPrefixFor(name: string): string {
  return `_INBOX_${name}`;
}

export function labUsers(subjectPrefix: string, testboxes: readonly string[]): LabUser[] {
  const s = new Subjects(subjectPrefix);
  const barriers = `${subjectPrefix}.cluster.*.barrier`;
  const inbox = (name: string): string => `${inboxPrefixFor(name)}.>`;
  const user = (name: string, role: LabRole, permissions: Permissions, testbox?: string): LabUser => ({
    name,
    role,
    inboxPrefix: inboxPrefixFor(name),
    permissions,
    ...(testbox === undefined ? {} : { testbox }),
  });
  return [
    user('worker', 'worker', {
      publish: { allow: [barriers, s.allMessages, s.allEvents] },
      subscribe: { allow: [s.allReports, s.allQueries, s.allTakes, s.allDones, s.allEvents] },
      allow_responses: true,
    }),
    user('scheduler', 'scheduler', {
      publish: { allow: [s.allReports, s.allQueries, s.allEvents] },
      subscribe: { allow: [barriers, s.allMessages, s.allEvents, inbox('scheduler')] },
    }),
    user('ops', 'ops', {
      publish: { deny: ['>'] },
      subscribe: { allow: [s.allEvents, barriers, s.allMessages] },
    }),
    ...testboxes.map((tb) => {
      const name = `node-${tb}`;
      return user(
        name,
        'node',
        {
          publish: { allow: [s.allReports, s.allQueries, s.take(tb), s.done(tb)] },
          subscribe: { allow: [barriers, s.allMessages, inbox(name)] },
        },
        tb,
      );
    }),
  ];
}

/**
 * Testbox names from `--testboxes`: one or more per line, separated by
 * commas or white space; `#` starts a comment. Each must be one subject
 * token (the agent's `--testbox`); repeats are kept once.
 */
export function parseTestboxes(text: string, source: string): string[] {
  const names = text
    .split('\n')
    .map((line) => line.replace(/#.*/, ''))
    .flatMap((line) => line.split(/[\s,]+/))
    .filter((n) => n !== '');
  for (const n of names) checkToken(n, `testbox in ${source}`);
  return [...new Set(names)];
}

/** The `authorization.timeout` the block sets, seconds. */
export const AUTH_TIMEOUT_S = 10;

const quote = (s: string): string => JSON.stringify(s);
const list = (xs: readonly string[]): string => `[${xs.map(quote).join(', ')}]`;

function renderPermissions(p: Permissions, indent: string): string {
  const side = (name: string, rule: { allow?: string[]; deny?: string[] }): string =>
    `${indent}  ${name}: { ${[rule.allow && `allow: ${list(rule.allow)}`, rule.deny && `deny: ${list(rule.deny)}`].filter(Boolean).join(', ')} }`;
  return [`{`, side('publish', p.publish), side('subscribe', p.subscribe), ...(p.allow_responses ? [`${indent}  allow_responses: true`] : []), `${indent}}`].join('\n');
}

const ROLE_NOTES: Record<LabRole, string> = {
  worker: 'cluster-sync worker: serves reports, queries, takes and dones; publishes barrier answers and events',
  scheduler: 'cluster-sync scheduler: legacy lkp endpoint (reports, queries, waits), submitted events, /ui',
  ops: 'cluster-sync watch / submit --watch: reads events and barrier answers, publishes nothing',
  node: 'cluster-sync node',
};

/**
 * The nats-server `authorization` block: one nkey user per lab user, by its
 * public key (the server holds no secret). A complete server configuration
 * by itself (`nats-server -c FILE`), or `include`d in a larger one.
 */
export function authorizationBlock(users: readonly { user: LabUser; publicKey: string }[], subjectPrefix: string): string {
  const lines = [
    '# Written by `cluster-sync nats-config`: one NATS user per cluster-sync process,',
    `# each allowed exactly the subjects it needs, under the subject prefix ${quote(subjectPrefix)}.`,
    '# Users are nkeys: this file holds public keys only; each process holds its own seed.',
    'authorization {',
    `  # Seconds a client has to authenticate after it connects. nats-server's default (2 s without`,
    `  # TLS) is too short for a busy test machine signing the nkey challenge: the server drops the`,
    `  # connection ("Authentication Timeout") and the process fails to connect.`,
    `  timeout: ${AUTH_TIMEOUT_S}`,
    '  users = [',
  ];
  for (const { user, publicKey } of users) {
    const note = user.role === 'node' ? `${ROLE_NOTES.node} --testbox ${user.testbox ?? ''}` : ROLE_NOTES[user.role];
    lines.push(`    # ${user.name}: ${note}`);
    lines.push(`    { nkey: ${quote(publicKey)}, permissions: ${renderPermissions(user.permissions, '      ')} }`);
  }
  lines.push('  ]', '}', '');
  return lines.join('\n');
}

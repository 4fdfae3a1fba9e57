import { z } from 'zod';
import { InfoFields } from '../bus/messages';

/** The CGI path lkp-tests asks, under `http://$LKP_SERVER:$LKP_CGI_PORT/~$LKP_USER/`. */
export const LEGACY_PATH = '/cgi-bin/lkp-cluster-sync';
/** Both places it is served: `/~lkp/...` and, behind Compass-CI's proxy, `/scheduler/~lkp/...`. */
export const LEGACY_ROUTES = [`/~lkp${LEGACY_PATH}`, `/scheduler/~lkp${LEGACY_PATH}`] as const;

/** What lkp's `sync_cluster_state` may ask for (Compass-CI's request_cluster_state). */
export const LEGACY_STATES = ['write_state', 'wait_start', 'wait_ready', 'wait_finish', 'finished', 'failed', 'abort', 'roles_ip'] as const;
export type LegacyState = (typeof LEGACY_STATES)[number];

/** A value lkp sends: `+`-joined lists arrive as spaces; no newline or NUL. */
const Field = z.string().max(4096).regex(/^[^\0\n\r]*$/, 'no NUL or newline');

/**
 * The query of `GET .../lkp-cluster-sync`, as lkp-tests' `lib/job.sh` sends it:
 * `job_id=$id&cluster=$cluster&node=$HOSTNAME&state=S[&node_roles=..&ip=..&direct_macs=..&direct_ips=..]`.
 * Unknown parameters are ignored, as Compass-CI ignored them.
 */
export const LegacyQuerySchema = z.object({
  job_id: z
    .string({ error: (issue) => (issue.input === undefined ? 'is missing (lkp-tests sends job_id=$id)' : 'must be given once, as text') })
    .min(1, 'is empty')
    .max(128)
    .regex(/^[A-Za-z0-9_+=,@%.-]+$/, 'letters, digits and _+=,@%.- only'),
  state: z.enum(LEGACY_STATES, { error: `must be one of ${LEGACY_STATES.join(', ')}` }).optional(),
  /** The job's `cluster:` (the spec name); informational. */
  cluster: Field.optional(),
  /** The node's host name; informational. */
  node: Field.optional(),
  /** What `write_state` records, checked as a NATS report's info is (`InfoFields`): they reach other nodes' /etc/hosts. */
  node_roles: InfoFields.node_roles.optional(),
  ip: InfoFields.ip.optional(),
  direct_macs: InfoFields.direct_macs.optional(),
  direct_ips: InfoFields.direct_ips.optional(),
});
export type LegacyQuery = z.infer<typeof LegacyQuerySchema>;

import { z } from 'zod';
import { InfoFields, MsgName, idRefine, idSchema } from '../bus/messages';

/** The CGI path lkp-tests asks, under `http://$LKP_SERVER:$LKP_CGI_PORT/~$LKP_USER/`. */
export const LEGACY_PATH = '/cgi-bin/lkp-cluster-sync';
/** Both places it is served: `/~lkp/...` and, behind Compass-CI's proxy, `/scheduler/~lkp/...`. */
export const LEGACY_ROUTES = [`/~lkp${LEGACY_PATH}`, `/scheduler/~lkp${LEGACY_PATH}`] as const;

/** What lkp's `sync_cluster_state` may ask for (Compass-CI's request_cluster_state). */
export const LEGACY_STATES = ['write_state', 'wait_start', 'wait_ready', 'wait_finish', 'finished', 'failed', 'abort', 'roles_ip', 'send', 'wait', 'wait_all', 'sync'] as const;
export type LegacyState = (typeof LEGACY_STATES)[number];

/**
 * The query of `GET .../lkp-cluster-sync`, as lkp-tests' `lib/job.sh` sends it:
 * `job_id=$id&cluster=$cluster&node=$HOSTNAME&state=S[&node_roles=..&ip=..&direct_macs=..&direct_ips=..]`
 * (Compass-CI's), or the same without `job_id` (intel's upstream).
 * Unknown parameters are ignored, as Compass-CI ignored them.
 */
export const LegacyQuerySchema = z.object({
  job_id: z
    .string({ error: (issue) => (issue.input === undefined ? 'is missing (lkp-tests sends job_id=$id)' : 'must be given once, as text') })
    .superRefine(idRefine('job id'))
    .optional(),
  state: z.enum(LEGACY_STATES, { error: `must be one of ${LEGACY_STATES.join(', ')}` }).optional(),
  /** The job's `cluster:` (the spec name); with `node`, identifies the node job when there is no job_id (intel's lkp-tests). */
  cluster: idSchema('spec name').optional(),
  /** The node's host name (`$HOSTNAME`, the spec's host). */
  node: idSchema('host').optional(),
  /** What `write_state` records, checked as a NATS report's info is (`InfoFields`): they reach other nodes' /etc/hosts. */
  node_roles: InfoFields.node_roles.optional(),
  ip: InfoFields.ip.optional(),
  direct_macs: InfoFields.direct_macs.optional(),
  direct_ips: InfoFields.direct_ips.optional(),
  /** `send|wait|wait_all|sync` (LAVA MultiNode): the message ID; other parameters of a send or sync are its data. */
  msg: MsgName.optional(),
  /** `wait_all`: only nodes of this role count. */
  role: z.string().min(1).max(128).regex(/^\S+$/, 'one role name, no white space').optional(),
});
export type LegacyQuery = z.infer<typeof LegacyQuerySchema>;

/** Parameters that are the endpoint's own; every other parameter of a `send` or `sync` is message data. */
export const LEGACY_PARAMS: ReadonlySet<string> = new Set([...Object.keys(LegacyQuerySchema.shape)]);

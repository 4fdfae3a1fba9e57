import type { ClusterStore } from '../cluster/store';
import { submitClusters } from '../cluster/submit';
import type { SubmittedCluster, SubmittedListener } from '../cluster/submit';
import { NotFoundError } from '../core/errors';
import type { QueueSet } from '../queue/queues';
import { attemptsOf, preparedFromMeta, rootOf } from './history';

async function metaOf(store: ClusterStore, cid: string): Promise<Record<string, string>> {
  const meta = await store.redis.hgetall(store.keys.meta(cid));
  if (!meta.token) throw new NotFoundError(`unknown cluster ${cid}`);
  return meta;
}

/**
 * `cluster-sync rerun`: submits a cluster's kept job again as a new cluster
 * (new ids), linked both ways (`rerun_of` on the new, `rerun:<id>` on the old).
 */
export async function rerunCluster(store: ClusterStore, queues: QueueSet, cid: string, onSubmitted?: SubmittedListener): Promise<SubmittedCluster> {
  const meta = await metaOf(store, cid);
  const [created] = await submitClusters(store, queues, [preparedFromMeta(cid, meta, { rerun_of: cid })], onSubmitted);
  if (!created) throw new Error(`re-run of ${cid} created no cluster`);
  await store.redis.hset(store.keys.meta(cid), `rerun:${created.cluster}`, Date.now());
  return created;
}

/**
 * A retry: submits the cluster again as the next attempt of its first
 * attempt, recorded on the first (`attempt:<n>`) and on the new one
 * (`attempt`, `attempt_of`). Returns the new attempt, or undefined when
 * that attempt exists already (another worker made it).
 */
export async function retryCluster(store: ClusterStore, queues: QueueSet, cid: string, onSubmitted?: SubmittedListener): Promise<SubmittedCluster | undefined> {
  const meta = await metaOf(store, cid);
  const root = rootOf(cid, meta);
  const rootMeta = root === cid ? meta : await store.redis.hgetall(store.keys.meta(root));
  const attempt = attemptsOf(root, rootMeta).length + 1;
  // Claimed first: a second judge of the same end finds the field taken.
  if ((await store.redis.hsetnx(store.keys.meta(root), `attempt:${attempt}`, '')) === 0) return undefined;
  let created: SubmittedCluster | undefined;
  try {
    [created] = await submitClusters(store, queues, [preparedFromMeta(cid, meta, { attempt, attempt_of: root })], onSubmitted);
  } catch (err) {
    await store.redis.hdel(store.keys.meta(root), `attempt:${attempt}`).catch(() => undefined);
    throw err;
  }
  if (!created) return undefined;
  await store.redis.hset(store.keys.meta(root), `attempt:${attempt}`, created.cluster);
  return created;
}

import { errorMessage } from '../src/core/errors';
import { testboxQueueName } from '../src/queue/queues';
import { sleep } from './env';
import { reportsInFlight } from './history';
import type { History } from './history';
import { readNodeJob, readRecord, retentionTarget } from './records';
import type { NodeJobRecord } from './records';
import type { RoundContext, Submitted } from './round';

/**
 * Reads a cluster's records as soon as it has settled, before retention
 * removes them: its nodes' lives are over, it ended, every report a node
 * was told was accepted is in its fold records (or the recovery bound
 * passed), and each node job taken from the dispatcher has ended in BullMQ
 * (or the end grace and the recovery bound passed).
 */
export async function settle(s: Submitted, ctx: RoundContext, history: History, deadline: number, ended: () => Promise<void>): Promise<void> {
  const { store, queues } = ctx;
  let limit: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(s.lives), new Promise<void>((resolve) => (limit = setTimeout(resolve, Math.max(0, deadline - Date.now()))))]);
  clearTimeout(limit);
  await ended();
  // The cluster's records as soon as it ended, before anything else: retention removes it --retention after
  // its end, and the waits below can take longer after a fault (a Redis restart: seed 31337, rounds 16 and 20).
  const jobIds = s.jobs.map((j) => j.job_id);
  s.target = await retentionTarget(store, s.cid);
  const early = await readRecord(store, s.cid, jobIds, new Map());
  const acked = (): string[] => history.lines.filter((l) => l.cluster === s.cid && l.kind === 'ack' && l.id && l.what !== 'heartbeat').map((l) => l.id as string);
  // A node's life can end while one of its reports is still being retried (its wait was answered by the
  // cluster's abort, heard on the barrier subject, while Redis refused the report): that report may be
  // acknowledged, and folded, after the life ended. The records are read once no report is in flight.
  const inFlight = (): boolean => reportsInFlight(history.lines, s.cid);
  // Fold records only grow; once retention removed them a read finds none: keep every id seen.
  const folded = new Set<string>();
  for (const until = Date.now() + ctx.check.recoveryMs; ; await sleep(100)) {
    for (const id of await store.foldedReportIds(s.cid).catch(() => [] as string[])) folded.add(id);
    if ((!inFlight() && acked().every((id) => folded.has(id))) || Date.now() > until) break;
  }
  // Read again (reports folded since the end), unless retention removed it meanwhile: then what was read at the end.
  s.target = (await retentionTarget(store, s.cid)) ?? s.target;
  const late = await readRecord(store, s.cid, jobIds, new Map([[s.cid, folded]]));
  const clusterRecord = late.view ? late : { ...early, folded, ...(early.view ? {} : { viewError: `${early.viewError ?? 'not read'} at its end; ${late.viewError ?? 'not read'} later` }) };
  const endedAt = s.target?.endedAt;
  if (endedAt !== undefined && (await store.now()) - endedAt > ctx.retention.retentionMs)
    history.add({
      kind: 'note',
      cluster: s.cid,
      detail: `records read ${(await store.now()) - endedAt} ms after the cluster ended, past the ${ctx.retention.retentionMs} ms retention: what retention removed reads as missing`,
    });
  const nodeJobs = new Map<string, NodeJobRecord>();
  // Every node job: those the nodes took (or asked for and never got) end as their nodes said or by the
  // dispatcher; the others (legacy nodes', machine clusters' untaken ones) are failed by the reaper at the end.
  const taken = s.jobs;
  for (const until = Date.now() + ctx.endGraceMs + ctx.check.recoveryMs; ; await sleep(200)) {
    for (const j of taken) nodeJobs.set(j.job_id, await readNodeJob(queues, testboxQueueName(j.queue), j.job_id).catch((err: unknown) => ({ state: `unreadable: ${errorMessage(err)}` })));
    if ([...nodeJobs.values()].every((r) => r.state === 'completed' || r.state === 'failed' || r.state === 'unknown') || Date.now() > until) break;
  }
  // Read past the cluster's retention (a fault made the waits above long): a job retention removed reads as unknown.
  const nodeJobsLate = endedAt !== undefined && (await store.now().catch(() => 0)) - endedAt > ctx.retention.retentionMs;
  if (nodeJobsLate) history.add({ kind: 'note', cluster: s.cid, detail: `node job records read past the ${ctx.retention.retentionMs} ms retention: those removed are not checked` });
  s.record = { ...clusterRecord, nodeJobs, ...(nodeJobsLate ? { nodeJobsLate } : {}) };
}

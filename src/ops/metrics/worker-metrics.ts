import { Counter, Histogram, Registry } from 'prom-client';
import type { WorkerEventMap, WorkerEvents } from '../../core/worker-events';

/** Buckets of the latency histograms, seconds: 1 ms to 10 s. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Recent ids remembered so that an event published again (a re-run fold) is counted once. */
const REMEMBER = 10_000;

class RecentSet {
  private readonly set = new Set<string>();
  /** True the first time `id` is added. */
  add(id: string): boolean {
    if (this.set.has(id)) return false;
    this.set.add(id);
    if (this.set.size > REMEMBER) this.set.delete(this.set.values().next().value as string);
    return true;
  }
}

export interface WorkerMetrics {
  readonly registry: Registry;
  /** Stops counting (the metrics keep their values). */
  detach(): void;
}

/**
 * What happens inside a worker process, counted from its WorkerEvents:
 * folds, rejections, resolutions, barrier latency, dead nodes, named
 * messages (sends, waits released, how long they waited), failed sweeps. Each worker
 * process counts its own share; Prometheus sums them across processes.
 */
export function attachWorkerMetrics(events: WorkerEvents, registry: Registry = new Registry()): WorkerMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> => new Counter({ name, help, labelNames, registers: [registry] });
  const histogram = <L extends string>(name: string, help: string, buckets: number[], labelNames: readonly L[] = []): Histogram<L> =>
    new Histogram({ name, help, buckets, labelNames, registers: [registry] });
  const folded = counter('cs_reports_folded_total', 'Reports folded into cluster state, by the state field of the report (wait_start, finished, failed, heartbeat, ...)', ['state']);
  const duplicates = counter('cs_reports_duplicate_total', 'Reports folded again (same report id): they changed nothing');
  const rejected = counter('cs_reports_rejected_total', 'Reports refused, by reason code (BAD_TOKEN, UNKNOWN_JOB, INVALID, TOO_LARGE, ...)', ['reason']);
  const resolutions = counter('cs_barrier_resolutions_total', 'Barrier resolutions published, by barrier and result (the barrier itself, or abort)', ['barrier', 'result']);
  const latency = histogram(
    'cs_barrier_latency_seconds',
    "From the moment the workers accepted the report that completed a barrier to the resolution published (the workers' clock; a node's clock never counts)",
    LATENCY_BUCKETS,
    ['barrier'],
  );
  const foldSeconds = histogram('cs_fold_duration_seconds', 'Time to fold one report and publish what it decided', [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]);
  const dead = counter('cs_dead_nodes_total', 'Nodes found silent (no heartbeat for 3 intervals) and aborted');
  const messages = counter('cs_messages_total', 'Named-message reports that changed a message (LAVA MultiNode), by op: send (lava-send, lava-sync) or wait (lava-wait, lava-wait-all)', ['op']);
  const messagesRefused = counter('cs_messages_refused_total', 'Named-message reports refused by the fold (a size or count limit, a role no node has); the sender was told why');
  const released = counter('cs_message_waits_released_total', 'Waits for a named message released, by mode: any (lava-wait) or all (lava-wait-all, lava-sync)', ['mode']);
  const waited = histogram(
    'cs_message_wait_seconds',
    'How long each released wait for a named message waited, from its registration to its release (server clock)',
    [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800, 7200],
    ['mode'],
  );
  const messageLatency = histogram(
    'cs_message_release_latency_seconds',
    "From the workers' accepting the report that released waits to the message's state published (workers' clock)",
    LATENCY_BUCKETS,
  );

  const sweepFailures = counter(
    'cs_sweep_failures_total',
    "Sweeps (deadlines, dead nodes, housekeeping) that failed, mostly for Redis: out of memory, unreachable, or no replica acknowledging a timeout's abort in time, which is then not told until one does",
  );

  const seenEvents = new RecentSet();
  const seenDead = new RecentSet();
  const onFolded = (...[report, outcome, ms, acceptedAt]: WorkerEventMap['folded']): void => {
    if (!outcome.ok) return;
    foldSeconds.observe(ms / 1000);
    if (outcome.dup) {
      duplicates.inc();
      return;
    }
    folded.inc({ state: report.state });
    // Never report.at: a node's clock may be anything (at: 0 once put 57 years here).
    const published = Date.now();
    const from = acceptedAt ?? published - ms;
    for (const r of outcome.resolutions) latency.observe({ barrier: r.barrier }, Math.max(0, published - from) / 1000);
    if (outcome.message?.error) messagesRefused.inc();
    if (outcome.message?.released?.length) messageLatency.observe(Math.max(0, published - from) / 1000);
  };
  const onRejected = (...[code]: WorkerEventMap['rejected']): void => {
    rejected.inc({ reason: code });
  };
  const onEvent = (...[ev]: WorkerEventMap['event']): void => {
    if (ev.type === 'resolution' && seenEvents.add(ev.id)) resolutions.inc({ barrier: ev.barrier, result: ev.result });
    if (ev.type === 'message' && seenEvents.add(ev.id)) {
      messages.inc({ op: ev.op });
      for (const r of ev.released ?? []) {
        released.inc({ mode: r.mode });
        waited.observe({ mode: r.mode }, r.waited_ms / 1000);
      }
    }
  };
  const onDead = (...[cluster, job]: WorkerEventMap['dead']): void => {
    if (seenDead.add(`${cluster} ${job}`)) dead.inc();
  };
  events.on('folded', onFolded);
  events.on('rejected', onRejected);
  events.on('event', onEvent);
  events.on('dead', onDead);
  const onSweepFailed = (): void => sweepFailures.inc();
  events.on('sweepFailed', onSweepFailed);
  return {
    registry,
    detach() {
      events.off('folded', onFolded);
      events.off('rejected', onRejected);
      events.off('event', onEvent);
      events.off('dead', onDead);
      events.off('sweepFailed', onSweepFailed);
    },
  };
}

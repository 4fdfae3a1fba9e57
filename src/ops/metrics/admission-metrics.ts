import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';
import type { WorkerEventMap, WorkerEvents } from '../../core/worker-events';

/**
 * Admission (DESIGN §9), from a worker process's events: how long clusters
 * waited to be admitted (observed by the process that handed each node job),
 * clusters ended not_admitted, and, from the admission sweep, machines by
 * state and clusters waiting. The gauges are set by whichever process swept
 * last: aggregate them with max(), not sum(), across worker processes.
 * Machine-seconds idle before start are counted by the process that
 * published each start resolution: sum them across processes.
 */
export function attachAdmissionMetrics(events: WorkerEvents, registry: Registry): () => void {
  const wait = new Histogram({
    name: 'cs_admission_wait_seconds',
    help: 'From submit to admission (every node job assigned to a machine), observed once per node job when its machine takes it',
    buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200],
    registers: [registry],
  });
  const notAdmitted = new Counter({ name: 'cs_clusters_not_admitted_total', help: 'Clusters ended not_admitted at their admit timeout', registers: [registry] });
  const machines = new Gauge({ name: 'cs_machines', help: 'Machines known to admission, by state (idle, reserved, running, gone)', labelNames: ['state'], registers: [registry] });
  const waiting = new Gauge({ name: 'cs_clusters_waiting_admission', help: 'Clusters waiting for admission', registers: [registry] });
  const idle = new Counter({
    name: 'cs_machine_idle_before_start_seconds_total',
    help: "Machine-seconds held idle inside node jobs before start, by the node's testbox: each node's wait from its wait_start report to the start barrier's resolution (Redis clock), counted when start resolves",
    labelNames: ['testbox'],
    registers: [registry],
  });
  const idleEach = new Histogram({
    name: 'cs_machine_idle_before_start_seconds',
    help: "Each node's wait inside its node job from its wait_start report to the start barrier's resolution",
    buckets: [0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200],
    registers: [registry],
  });
  const onIdle = (...[, , testbox, ms]: WorkerEventMap['idleBeforeStart']): void => {
    idle.inc({ testbox }, ms / 1000);
    idleEach.observe(ms / 1000);
  };
  const onHanded = (...[, , , ms]: WorkerEventMap['handed']): void => wait.observe(ms / 1000);
  const onNot = (): void => notAdmitted.inc();
  const onSwept = (...[r]: WorkerEventMap['admissionSwept']): void => {
    for (const [state, n] of Object.entries(r.machines)) machines.set({ state }, n);
    waiting.set(r.waiting);
  };
  events.on('handed', onHanded);
  events.on('notAdmitted', onNot);
  events.on('admissionSwept', onSwept);
  events.on('idleBeforeStart', onIdle);
  return () => {
    events.off('handed', onHanded);
    events.off('notAdmitted', onNot);
    events.off('admissionSwept', onSwept);
    events.off('idleBeforeStart', onIdle);
  };
}

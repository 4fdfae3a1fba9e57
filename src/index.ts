/**
 * cluster-sync as a library: `import { NodeClient } from 'cluster-sync'`.
 *
 * This entry holds what runs beside the workers: the node and message
 * clients a test machine uses, the wire and answer types, the errors, the
 * connection settings, and submitting a job (through the scheduler's HTTP
 * API, or straight into Redis). The workers themselves are the subpath
 * `cluster-sync/workers` (`startWorkers`): they build on this module, never
 * the other way round, so nothing here may import `workers/`.
 */

// Connecting
export { ConnectionConfigSchema, hasConfiguredServers, loadConnectionConfig } from './core/config';
export type { ConnectionConfig, ConnectionFlags } from './core/config';
export { connectNats } from './bus/connect';
export type { NatsProblemSink } from './bus/connect';
export { Subjects } from './bus/subjects';

// The clients a test machine uses
export { NodeClient } from './client/node-client';
export type { BarrierAnswer, MessageFields, NodeClientOptions, NodeIdentity } from './client/node-client';
export { MessageClient } from './client/message-client';
export type { Group, MessageWaitOptions } from './client/message-client';

// Reports, answers and what they carry
export { MAX_REPORT_BYTES, QuerySchema, ReportInfoSchema, ReportSchema, WaitMode } from './bus/messages';
export type { Query, Report, ReportInfo, ReportReply } from './bus/messages';
export { Barrier, ReportKind } from './core/states';
export type { NodeState, Result } from './core/states';
export type { ClusterEvent, MessageRelease, MessageState, Resolution } from './fold/outcome';
export type { BarrierView, ClusterView, NodeEntry } from './cluster/view';
export type { NodeJob } from './split/node-job';
export type { SweepResult, WorkerEventMap } from './core/worker-events';
export { parseNodeJob } from './bus/queue-messages';

// Errors
export { ClusterAbortedError, ClusterSyncError, ErrorCode, InvalidInputError, MissingBinaryError, NoRespondersError, NotFoundError, RejectedError, TimeoutError, errorMessage } from './core/errors';

// Submitting jobs
export { submitJob } from './scheduler/submit-client';
export type { SubmitRequest } from './scheduler/submit-client';
export { prepareClusters } from './cluster/prepare';
export type { PrepareOptions, PreparedCluster } from './cluster/prepare';
export { submitClusters, PartialSubmitError } from './cluster/submit';
export type { SubmittedCluster } from './cluster/submit';
export { ClusterStore } from './cluster/store';
export { QueueSet } from './queue/queues';

// Running the scheduler, and throw-away servers for tests
export { startScheduler } from './scheduler/start';
export type { SchedulerHandle, StartSchedulerOptions } from './scheduler/start';
export { startNats, startRedis } from './services/local-servers';
export type { LocalServer, NatsServer, NatsServerOptions, RedisServerOptions } from './services/local-servers';

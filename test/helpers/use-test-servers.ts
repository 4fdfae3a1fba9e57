import type { ConnectionConfig } from '../../src/core/config';
import type { RedisServerOptions } from '../../src/services/local-servers';
import { startWorkers } from '../../workers';
import type { WorkersHandle, WorkersOptions } from '../../workers';
import { startWorkerProcess } from './processes';
import type { CliProcess } from './processes';
import { Resources, startTestServers } from './servers';
import type { TestServers } from './servers';

export interface UseTestServersOptions {
  /** Options of the file's Redis server (e.g. `appendfsync`). Default: none. */
  redis?: RedisServerOptions;
  /**
   * `'file'` (default): one namespace (and its workers) for the whole file,
   * taken in beforeAll; resources are closed in afterAll. `'test'`: a fresh
   * namespace (and workers) for each test, taken in beforeEach; resources are
   * closed in afterEach.
   */
  per?: 'file' | 'test';
  /** In-process workers (`startWorkers`) in the namespace, with these options (`true`: defaults). Default: none. */
  workers?: WorkersOptions | true;
  /** A `cluster-sync worker` process in the file's namespace, with these extra arguments (`true`: none). Default: none. */
  workerProcess?: string[] | true;
}

export interface TestServersFixture {
  readonly servers: TestServers;
  /** Closed first: after each test (`per: 'test'`) or after the file. */
  readonly res: Resources;
  /** The current namespace: the file's, or the current test's. */
  readonly config: ConnectionConfig;
  /** The in-process workers of the current namespace; an error if none were asked for. */
  readonly workers: WorkersHandle;
  /** The worker process; an error if none was asked for. */
  readonly worker: CliProcess;
  /** Stops `p` after the resources are closed and before the servers stop; returns `p`. */
  track(p: CliProcess): CliProcess;
}

/**
 * Registers the jest hooks that start throw-away Redis and NATS for this file
 * (startTestServers), take a namespace per file or per test, start the asked
 * for workers in it, and at the end close, in this order: the resources (the
 * in-process workers, added first, close last of them), the worker process,
 * the tracked processes, then the servers. Call it at the top of a test file,
 * before the file's own hooks, which then see `config` set and run their
 * cleanup after these.
 */
export function useTestServers(options: UseTestServersOptions = {}): TestServersFixture {
  const res = new Resources();
  const tracked: CliProcess[] = [];
  let servers: TestServers | undefined;
  let config: ConnectionConfig | undefined;
  let workers: WorkersHandle | undefined;
  let worker: CliProcess | undefined;
  const per = options.per ?? 'file';
  if (per === 'test' && options.workerProcess) throw new Error('useTestServers: workerProcess is started once per file; it cannot go with per: "test"');

  async function takeNamespace(s: TestServers): Promise<void> {
    config = s.config();
    if (options.workers) {
      const w = await startWorkers(config, options.workers === true ? {} : options.workers);
      workers = res.add(w, (x) => x.close());
    }
  }

  beforeAll(async () => {
    servers = await startTestServers(options.redis);
    if (per === 'file') {
      await takeNamespace(servers);
      if (options.workerProcess) worker = await startWorkerProcess(config!, options.workerProcess === true ? [] : options.workerProcess);
    }
  });
  if (per === 'test') {
    beforeEach(() => takeNamespace(servers!));
    afterEach(() => res.closeAll());
  }
  afterAll(async () => {
    await res.closeAll();
    await worker?.stop();
    await Promise.all(tracked.map((p) => p.stop()));
    await servers?.stop();
  });

  const started = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`useTestServers: no ${what} (asked for before the hooks ran, or not in the options)`);
    return v;
  };
  return {
    res,
    get servers() {
      return started(servers, 'servers');
    },
    get config() {
      return started(config, 'namespace');
    },
    get workers() {
      return started(workers, 'in-process workers');
    },
    get worker() {
      return started(worker, 'worker process');
    },
    track(p) {
      tracked.push(p);
      return p;
    },
  };
}

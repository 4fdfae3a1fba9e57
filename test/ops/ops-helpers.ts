import { Subjects } from '../../src/bus/subjects';
import { NodeClient } from '../../src/client/node-client';
import type { SubmittedCluster } from '../../src/cluster/submit';
import type { ConnectionConfig } from '../../src/core/config';
import type { Resources } from '../helpers/servers';

/** One started NodeClient per node job of the cluster. */
export async function nodeClients(res: Resources, config: ConnectionConfig, cluster: SubmittedCluster): Promise<NodeClient[]> {
  const nc = await res.nats(config);
  const subjects = new Subjects(config.subjectPrefix);
  return Promise.all(
    cluster.jobs.map(async (j) => {
      const c = res.add(new NodeClient(nc, subjects, { cluster: j.cluster, job: j.job_id, token: j.token }), (x) => x.close());
      await c.start();
      return c;
    }),
  );
}

/** Every node waits at the barrier of `kind`; resolves with the results once all are answered. */
export async function allWait(nodes: NodeClient[], kind: 'wait_start' | 'wait_ready' | 'wait_finish' | 'finished'): Promise<string[]> {
  const answers = await Promise.all(nodes.map((n) => n.wait(kind)));
  return answers.map((a) => a.result);
}

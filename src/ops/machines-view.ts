import { AdmissionStore } from '../admission/admission-store';
import type { MachineRecord } from '../admission/admission-store';
import { explainWaiting } from '../admission/explain';
import type { WaitingCluster } from '../admission/explain';
import { machineDoing } from '../admission/render';
import type { ClusterStore } from '../cluster/store';

/** What `GET /ops/machines` answers: what `cluster-sync status` prints about admission, as JSON. */
export interface MachinesView {
  /** Every machine admission knows (gone ones while still listed), by testbox then id; `doing` in a few words. */
  machines: (MachineRecord & { doing: string })[];
  /** Clusters waiting for admission, oldest first, with what each waits for. */
  waiting: WaitingCluster[];
  /** Server time, ms. */
  now: number;
}

export async function machinesView(store: ClusterStore): Promise<MachinesView> {
  const admission = new AdmissionStore(store.redis, store.keys);
  const [machines, waiting] = await Promise.all([admission.machines(), explainWaiting(admission)]);
  machines.sort((a, b) => a.testbox.localeCompare(b.testbox) || a.id.localeCompare(b.id));
  return { machines: machines.map((m) => ({ ...m, doing: machineDoing(m) })), waiting, now: Date.now() };
}

/**
 * The model of named messages (LAVA MultiNode's lava-send / lava-wait /
 * lava-wait-all / lava-sync: `send` and `wait_msg` reports), written from
 * docs/architecture.md "Messages between nodes", for ClusterModel:
 *
 * - a send adds this node's data to the ID (a key sent again takes the new
 *   value); the first send of a node puts it last in the ID's send order;
 * - a wait is satisfied for mode `any` when any node has sent the ID, for
 *   `all` when every node (having `role`, when given) has; `all` with a role
 *   no node has is refused (`error`), changing nothing;
 * - a send with a mode also registers that wait; the same open wait asked
 *   again changes nothing; a changed ID bumps its `seq` and releases the open
 *   waits it now satisfies (sorted by job), logged in a `message` event;
 * - no node state moves and no barrier resolves.
 *
 * Times (`at`, `since`, `waited_ms`) and the byte and ID limits are not
 * modelled: the generator sends a few short keys to two IDs, so no limit is
 * reached (test/engine/messages.test.ts tests the limits).
 */

export type WaitMode = 'any' | 'all';

export interface ModelMessageRequest {
  msg: string;
  data?: Record<string, string>;
  mode?: WaitMode;
  role?: string;
}

export interface ModelRelease {
  job: string;
  mode: WaitMode;
  role?: string;
}

/** What the nodes hear for one ID (MessageState without times). */
export interface ModelMessageView {
  msg: string;
  seq: number;
  senders: { job: string; roles: string; data: Record<string, string> }[];
  abort?: string;
  by: { job: string; report: string; op: 'send' | 'wait' };
  error?: string;
  released?: ModelRelease[];
}

/** One ID's stored record (the messages hash's value without times and byte counts). */
export interface ModelMessageRecord {
  seq: number;
  order: string[];
  senders: Map<string, Record<string, string>>;
  waits: Map<string, { mode: WaitMode; role?: string; released: boolean }>;
}

/** The `message` event's fields a fold logs when it changed an ID. */
export interface ModelMessageEvent {
  op: 'send' | 'wait';
  msg: string;
  mode?: WaitMode;
  role?: string;
  keys?: string[];
  released?: ModelRelease[];
}

function hasRole(roles: string, role: string): boolean {
  return roles.split(/\s+/).includes(role);
}

function satisfied(rec: ModelMessageRecord, roles: Map<string, string>, mode: WaitMode, role: string | undefined): boolean {
  if (mode === 'any') return rec.order.length > 0;
  for (const [job, r] of roles) if ((role === undefined || hasRole(r, role)) && !rec.senders.has(job)) return false;
  return true;
}

/** The messages of one cluster. */
export class MessagesModel {
  readonly records = new Map<string, ModelMessageRecord>();

  /** The ID's current state as a view answering `by` (`abort`: the cluster's abort reason, if it aborted). */
  view(msg: string, roles: Map<string, string>, by: ModelMessageView['by'], abort: string | undefined): ModelMessageView {
    const rec = this.records.get(msg);
    return {
      msg,
      seq: rec?.seq ?? 0,
      senders: (rec?.order ?? []).map((job) => ({ job, roles: roles.get(job) ?? '', data: { ...rec!.senders.get(job) } })),
      ...(abort !== undefined ? { abort } : {}),
      by,
    };
  }

  /**
   * Folds one `send` or `wait_msg` of node `job` (report `id`); `roles` are
   * the cluster's nodes' current roles. Returns the view to publish and the
   * event to log (none when nothing changed).
   */
  fold(
    cid: string,
    kind: 'send' | 'wait_msg',
    job: string,
    id: string,
    req: ModelMessageRequest,
    roles: Map<string, string>,
    abort: string | undefined,
  ): { view: ModelMessageView; event?: ModelMessageEvent } {
    const by = { job, report: id, op: kind === 'send' ? ('send' as const) : ('wait' as const) };
    const { mode, role } = req;
    if (mode === 'all' && role !== undefined && ![...roles.values()].some((r) => hasRole(r, role))) {
      return { view: { ...this.view(req.msg, roles, by, abort), error: `no node of cluster ${cid} has role ${role}` } };
    }
    const rec: ModelMessageRecord = this.records.get(req.msg) ?? { seq: 0, order: [], senders: new Map(), waits: new Map() };
    let changed = false;
    let keys: string[] | undefined;
    if (kind === 'send') {
      const before = rec.senders.get(job);
      const data = { ...before };
      keys = Object.keys(req.data ?? {}).sort();
      for (const [k, v] of Object.entries(req.data ?? {})) {
        if (data[k] !== v) changed = true;
        data[k] = v;
      }
      if (!before) {
        changed = true;
        rec.order.push(job);
      }
      rec.senders.set(job, data);
    }
    if (mode !== undefined) {
      const w = rec.waits.get(job);
      if (!(w && !w.released && w.mode === mode && w.role === role)) {
        rec.waits.set(job, { mode, ...(role !== undefined ? { role } : {}), released: false });
        changed = true;
      }
    }
    const released: ModelRelease[] = [];
    if (changed) {
      for (const [j, w] of rec.waits) {
        if (!w.released && satisfied(rec, roles, w.mode, w.role)) {
          w.released = true;
          released.push({ job: j, mode: w.mode, ...(w.role !== undefined ? { role: w.role } : {}) });
        }
      }
      released.sort((a, b) => (a.job < b.job ? -1 : a.job > b.job ? 1 : 0));
      rec.seq += 1;
      this.records.set(req.msg, rec);
    }
    const view = this.view(req.msg, roles, by, abort);
    if (released.length > 0) view.released = released;
    if (!changed) return { view };
    const event: ModelMessageEvent = {
      op: by.op,
      msg: req.msg,
      ...(mode !== undefined ? { mode } : {}),
      ...(role !== undefined ? { role } : {}),
      ...(keys !== undefined ? { keys } : {}),
      ...(released.length > 0 ? { released } : {}),
    };
    return { view, event };
  }
}

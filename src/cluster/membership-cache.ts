import { setBounded } from '../core/bounded-map';

/**
 * Remembers (cluster, job, token) triples that passed the membership check.
 * A cluster's token and its jobs never change after the cluster is created,
 * so a triple that was valid stays valid; only successes are remembered, so a
 * refused report is checked against Redis every time. Bounded, oldest out.
 *
 * Keys are stored as flat strings: a key built with a template literal is a
 * V8 cons string that keeps its three parts alive as well (294 bytes per entry
 * against 127 flat, measured with 40,800 entries: 10,200 open 4-node clusters).
 */
export class MembershipCache {
  private readonly seen = new Map<string, true>();
  /** @param max entries kept; default 100 000 (about 12 MB). */
  constructor(private readonly max = 100_000) {}

  private static key(cluster: string, job: string, token: string): string {
    return `${cluster}\n${job}\n${token}`;
  }

  has(cluster: string, job: string, token: string): boolean {
    return this.seen.has(MembershipCache.key(cluster, job, token));
  }

  /** Entries held now. */
  get size(): number {
    return this.seen.size;
  }

  remember(cluster: string, job: string, token: string): void {
    const k = flat(MembershipCache.key(cluster, job, token));
    setBounded(this.seen, k, true, this.max);
  }
}

/** A copy of `s` in one piece (not a tree of the strings it was built from). */
function flat(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}

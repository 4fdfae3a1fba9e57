/**
 * Remembers (cluster, job, token) triples that passed the membership check.
 * A cluster's token and its jobs never change after the cluster is created,
 * so a triple that was valid stays valid; only successes are remembered, so a
 * refused report is checked against Redis every time. Bounded, oldest out.
 */
export class MembershipCache {
  private readonly seen = new Map<string, true>();
  /** @param max entries kept; default 100 000 (a few MB). */
  constructor(private readonly max = 100_000) {}

  private static key(cluster: string, job: string, token: string): string {
    return `${cluster}\n${job}\n${token}`;
  }

  has(cluster: string, job: string, token: string): boolean {
    return this.seen.has(MembershipCache.key(cluster, job, token));
  }

  remember(cluster: string, job: string, token: string): void {
    const k = MembershipCache.key(cluster, job, token);
    if (this.seen.has(k)) return;
    if (this.seen.size >= this.max) {
      const oldest = this.seen.keys().next().value;
      if (oldest !== undefined) this.seen.delete(oldest);
    }
    this.seen.set(k, true);
  }
}

/** A performance target of the bench: what it speaks of, the target, what was measured and whether it was met. */
export interface Target {
  what: string;
  target: string;
  measured: string;
  /** `undefined` when the run was smaller than the size the target speaks of (e.g. --quick). */
  met: boolean | undefined;
}

/** Waits `ms`, or less when `signal` aborts first; never rejects. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * Whether `p` settled within `ms` (true) or was still pending then (false);
 * a rejection of `p` within `ms` is passed on. The timer ends either way.
 */
export async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const stop = new AbortController();
  try {
    return await Promise.race([p.then(() => true), pause(ms, stop.signal).then(() => false)]);
  } finally {
    stop.abort();
  }
}

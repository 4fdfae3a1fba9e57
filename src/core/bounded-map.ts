/**
 * Sets `key` in an insertion-ordered Map kept at `max` entries at most: when
 * a new key would pass the bound, the oldest entry goes first. (A key already
 * there keeps its place; delete it first to make it the newest.)
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  if (!map.has(key) && map.size >= max) {
    const oldest = map.keys().next();
    if (!oldest.done) map.delete(oldest.value);
  }
  map.set(key, value);
}

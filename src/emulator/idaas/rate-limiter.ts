/** Fixed one-second windows per key; `perSecond <= 0` disables the limit. */
export class RateLimiter {
  private readonly windows = new Map<string, { second: number; count: number }>();
  constructor(readonly perSecond: number) {}

  /** Counts one request; false when it is over the limit. */
  take(key: string, nowMs: number): boolean {
    if (this.perSecond <= 0) return true;
    const second = Math.floor(nowMs / 1000);
    const w = this.windows.get(key);
    if (!w || w.second !== second) {
      // Keys are only ever authenticated tokens (demo ones, and the few the token endpoint issued), so this map stays small.
      this.windows.set(key, { second, count: 1 });
      return true;
    }
    w.count += 1;
    return w.count <= this.perSecond;
  }
}

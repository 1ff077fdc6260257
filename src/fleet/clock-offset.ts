/**
 * Server clock minus local clock. The estimate rests on the sample with the shortest round trip
 * (error <= half of it); that sample ages by 1 ms per 10 s so that clock drift is followed, and
 * samples nearly as good are averaged in.
 */
export class ClockOffset {
  private offset = 0;
  /** Round trip of the sample the offset rests on, and when it was taken (local ms). */
  private rtt = Infinity;
  private at = 0;

  get value(): number {
    return this.offset;
  }

  /** A command sent at local `t0`, answered at `t1`, that read the server clock as `server`. */
  sample(t0: number, t1: number, server: number): void {
    if (!Number.isFinite(server)) return;
    const rtt = t1 - t0;
    const sample = server - (t0 + t1) / 2;
    const best = this.rtt + (t1 - this.at) / 10_000;
    if (rtt < best) {
      this.offset = sample;
      this.rtt = rtt;
      this.at = t1;
    } else if (rtt <= best + 2) {
      this.offset += 0.3 * (sample - this.offset);
    }
  }

  /** A few TIME round trips (microsecond resolution), on (re)connection. */
  async calibrate(time: () => Promise<[string | number, string | number]>): Promise<void> {
    for (let i = 0; i < 3; i++) {
      const t0 = performance.timeOrigin + performance.now();
      const [sec, usec] = await time();
      const t1 = performance.timeOrigin + performance.now();
      this.sample(t0, t1, Number(sec) * 1000 + Number(usec) / 1000);
    }
  }
}

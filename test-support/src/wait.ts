// Waiting for something that takes a while (a process to start, a scrape to happen, a
// write to be acknowledged). `until` is the one way to wait, in the tests, their
// support code and the tools alike; the lint config refuses Vitest's vi.waitFor and
// expect.poll, so that every wait reads, and fails, the same way.

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface UntilOptions {
  /** How long to wait between attempts; half a second unless given. */
  intervalMs?: number;
  /**
   * Checked before each attempt: a reason to stop waiting at once (the process that
   * was to answer has exited), or undefined to go on.
   */
  giveUpIf?: () => string | undefined;
}

/**
 * Retries `attempt` until it returns a value other than undefined or false, and returns
 * that value. An attempt that throws (a failed `expect`, a refused connection) is
 * retried too. After `timeoutMs`, or once `giveUpIf` gives a reason, throws an error
 * naming `what` and carrying the last attempt's error.
 */
export async function until<T>(
  what: string,
  timeoutMs: number,
  attempt: () => Promise<T | undefined | false> | T | undefined | false,
  { intervalMs = 500, giveUpIf }: UntilOptions = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const reason = giveUpIf?.();
    if (reason !== undefined) throw new Error(`gave up waiting for ${what}: ${reason}`, { cause: last });
    try {
      const value = await attempt();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    await sleep(intervalMs);
  }
  const reason = last instanceof Error ? `: ${last.message}` : '';
  throw new Error(`timed out waiting for ${what}${reason}`, { cause: last });
}

// Waiting for something that takes a while (a process to start, a scrape to happen).

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Retries `attempt` every half second until it returns a value; throws (with the last error) after `timeoutMs`. */
export async function until<T>(what: string, timeoutMs: number, attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await attempt();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await sleep(500);
  }
  const reason = last instanceof Error ? `: ${last.message}` : '';
  throw new Error(`timed out waiting for ${what}${reason}`, { cause: last });
}

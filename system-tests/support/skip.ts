// Tests that need software npm cannot install (PostgreSQL, Prometheus, Podman) skip
// when it is missing on a developer's machine, saying so loudly; under CI they fail
// instead, so nothing is ever skipped there.

/** Returns true (skip) when `missing` names what is missing; throws under CI. */
export function skipLoudly(missing: string | undefined, what: string): boolean {
  if (missing === undefined) return false;
  const message = `${missing}: ${what} SKIPPED.`;
  if (process.env.CI) throw new Error(`${message} CI must run them.`);
  console.warn(`\n${'!'.repeat(80)}\n!! ${message}\n${'!'.repeat(80)}\n`);
  return true;
}

// Kubernetes resource quantities (https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/quantity/).

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
const DECIMAL: Record<string, number> = { k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** "250m" -> 0.25, "1" -> 1, 0.5 -> 0.5 */
export function cpuCores(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  return quantity.endsWith('m') ? Number(quantity.slice(0, -1)) / 1000 : Number(quantity);
}

/** "256Mi" -> 268435456, "1G" -> 1e9, "1024" -> 1024 */
export function memoryBytes(quantity: string | number): number {
  if (typeof quantity === 'number') return quantity;
  const match = /^([0-9.]+)([A-Za-z]*)$/.exec(quantity);
  if (match === null) throw new Error(`not a quantity: ${quantity}`);
  const [, number, suffix] = match;
  const factor = suffix === '' ? 1 : (BINARY[suffix!] ?? DECIMAL[suffix!]);
  if (factor === undefined) throw new Error(`unknown quantity suffix in ${quantity}`);
  return Number(number) * factor;
}

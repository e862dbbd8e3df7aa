// The benchmarks report medians over repeated rounds (npm run bench, bench:capacity):
// on a shared, noisy machine one stray round must not decide a figure.

/** The middle value; of an even number of values, the mean of the two middle ones. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return 0;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

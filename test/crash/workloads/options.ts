/** Command-line checks shared by the crash workloads. */

/** `values[name]` (from `parseArgs`) as an integer >= `min`; throws naming the flag otherwise. */
export function intOption(
  values: Readonly<Record<string, unknown>>,
  name: string,
  min: number,
): number {
  const raw = values[name];
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new Error(`Expected \`--${name}\` to be an integer >= ${min}, got \`${String(raw)}\``);
  }
  return n;
}

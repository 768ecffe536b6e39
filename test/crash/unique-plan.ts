/**
 * Plans a given number of distinct crash states.
 *
 * `CrashReplayer.plan()` gives several subsets per crash point; in a walguard log many of
 * them build the same state (between two syncs a batch leaves only a few pending writes, so a
 * random subset often equals `none` or `all`), and `maxStates` thins points before they are
 * deduplicated. This plans generously, drops specs whose state key was already planned, and
 * thins the rest evenly to the target, so an exploration checks exactly `target` states
 * (or every distinct state there is, when the log has fewer).
 */
import type { CrashReplayer, CrashStateSpec, PlanOptions } from './replay.js';

/** Options of {@link planUniqueStates}. */
export interface UniquePlanOptions {
  /** How many distinct states to plan. */
  target: number;
  /** Crash points (default `syncs`); see {@link PlanOptions.points}. */
  points?: PlanOptions['points'];
  /** Seed of the random subsets (default 1). */
  seed?: number;
  /** Most random and torn subsets per point tried (default 6); fewer when enough. */
  maxRandomPerPoint?: number;
}

/** Distinct-state specs, sorted by crash point: at most `target`, evenly spread. */
export function planUniqueStates(
  replayer: CrashReplayer,
  options: UniquePlanOptions,
): CrashStateSpec[] {
  const maxRandom = options.maxRandomPerPoint ?? 6;
  let unique: CrashStateSpec[] = [];
  for (let perPoint = 1; perPoint <= maxRandom; perPoint++) {
    const specs = replayer.plan({
      points: options.points ?? 'syncs',
      randomPerPoint: perPoint,
      seed: options.seed ?? 1,
    });
    const seen = new Set<string>();
    unique = [];
    for (const spec of specs) {
      const key = replayer.stateKey(spec);
      if (seen.has(key)) continue;
      seen.add(key);
      unique.push(spec);
    }
    if (unique.length >= options.target) break;
  }
  if (unique.length <= options.target) return unique;
  const step = unique.length / options.target;
  return Array.from({ length: options.target }, (_, i) => unique[Math.floor(i * step)]!);
}

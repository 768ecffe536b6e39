/**
 * Summarises `.cpuprofile` files (from `node --cpu-prof`): self time by function and by file,
 * and the thread's busy share. Used to find where a trial's time goes:
 *
 *   node --cpu-prof --cpu-prof-dir=bench/results/profiles --import tsx bench/trial.ts walguard-full '{…}'
 *   node --import tsx bench/profile-summary.ts bench/results/profiles [--top 25]
 *
 * One profile is written per thread (main, writer worker, module-loader threads); each is
 * summarised on its own.
 */
import fs from 'node:fs';
import path from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time per key, in ms. */
function selfTimes(profile: Profile, key: (node: ProfileNode) => string): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = new Map<string, number>();
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]!);
    if (node === undefined) continue;
    const ms = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const k = key(node);
    out.set(k, (out.get(k) ?? 0) + ms);
  }
  return out;
}

function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const at = url.indexOf('node_modules/');
  if (at >= 0) return url.slice(at + 'node_modules/'.length);
  const src = url.search(/\/(src|bench|test)\//);
  return src >= 0 ? url.slice(src + 1) : url.replace(/^file:\/\//, '');
}

function top(map: Map<string, number>, n: number, total: number): string[] {
  return [...map.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(
      ([k, ms]) =>
        `  ${ms.toFixed(1).padStart(8)} ms  ${((ms / total) * 100).toFixed(1).padStart(5)}%  ${k}`,
    );
}

function summarise(file: string, n: number): string {
  const profile = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
  const total = (profile.endTime - profile.startTime) / 1000;
  const byFunction = selfTimes(
    profile,
    (node) =>
      `${node.callFrame.functionName || '(anonymous)'} ${shortUrl(node.callFrame.url)}:${node.callFrame.lineNumber + 1}`,
  );
  const byFile = selfTimes(profile, (node) => {
    const name = node.callFrame.functionName;
    if (name === '(idle)' || name === '(program)' || name === '(garbage collector)') return name;
    return shortUrl(node.callFrame.url).replace(/:\d+$/, '');
  });
  const idle = byFunction.get('(idle) (native):0') ?? 0;
  return [
    `${path.basename(file)}: ${total.toFixed(0)} ms profiled, ${(total - idle).toFixed(0)} ms busy`,
    'by file:',
    ...top(byFile, n, total),
    'by function:',
    ...top(byFunction, n, total),
  ].join('\n');
}

function main(): void {
  const args = process.argv.slice(2);
  const at = args.indexOf('--top');
  const n = at >= 0 ? Number(args.splice(at, 2)[1]) : 25;
  const files = args.flatMap((a) =>
    fs.statSync(a).isDirectory()
      ? fs
          .readdirSync(a)
          .filter((f) => f.endsWith('.cpuprofile'))
          .sort()
          .map((f) => path.join(a, f))
      : [a],
  );
  if (files.length === 0) {
    process.stderr.write(
      'Usage: node --import tsx bench/profile-summary.ts <dir|file…> [--top N]\n',
    );
    process.exit(2);
  }
  for (const file of files) process.stdout.write(`${summarise(file, n)}\n\n`);
}

main();

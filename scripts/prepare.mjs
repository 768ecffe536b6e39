// npm's `prepare` hook: builds dist/ when walguard is installed from git (npm clones the
// repository, installs its devDependencies and runs `prepare` before packing it), so that a
// git dependency ships the same files as the registry tarball. In a clone of the repository
// itself `npm ci` does not build: `npm test`, `npm run demo` and `npm pack` (its `prepack`)
// build first anyway. npm sets `npm_package_resolved` only when it prepares a git or folder
// dependency.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const dependency = process.env.npm_package_resolved !== undefined;
if (dependency || process.env.WALGUARD_BUILD_ON_INSTALL === '1') {
  if (!existsSync('node_modules/typescript')) {
    console.error('walguard prepare: typescript is not installed; cannot build dist/');
    process.exit(1);
  }
  const result = spawnSync(
    process.execPath,
    ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'],
    {
      stdio: 'inherit',
    },
  );
  process.exit(result.status ?? 1);
}

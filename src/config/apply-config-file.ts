/**
 * `openDatabase({ config: 'walguard.yaml', ...options })`: the file's options (with the
 * `WALGUARD_*` environment applied) under the options given in code.
 *
 * Precedence, lowest first: defaults < the file < the environment < options in code. The
 * environment is read only when a configuration file is named, so an app that does not opt
 * in is never changed by a stray variable. `backup`, `checkpoint` and `readers` merge key by key; every
 * other option given in code replaces the file's. Options whose value is `undefined` are
 * ignored, as `resolveOptions` ignores them.
 */
import type { WalguardOptions } from '../options.js';
import { type ConfigOptions, loadConfig } from './load-config.js';

/** `openDatabase` options that name a configuration file; `path` may then come from it. */
export type OptionsWithConfig = Omit<WalguardOptions, 'path'> & {
  /** The configuration file (YAML), relative to the working directory or absolute. */
  config: string;
  /** The database file; default the file's `path`. */
  path?: string;
};

/**
 * The options `openDatabase` should resolve: unchanged when no `config` is named, otherwise
 * the file's merged under the given ones (without `config`). Throws `INVALID_OPTION` for a
 * bad file.
 */
export function applyConfigFile(
  options: WalguardOptions | OptionsWithConfig,
  env: NodeJS.ProcessEnv = process.env,
): WalguardOptions {
  if (typeof options !== 'object' || options === null || !('config' in options)) {
    return options as WalguardOptions;
  }
  const { config, ...given } = options as OptionsWithConfig;
  if (config === undefined) return given as WalguardOptions;
  const file: ConfigOptions = loadConfig(config, env);
  const defined = Object.fromEntries(
    Object.entries(given).filter(([, v]) => v !== undefined),
  ) as Partial<WalguardOptions>;
  const merged: Record<string, unknown> = { ...file, ...defined };
  for (const section of ['backup', 'checkpoint', 'readers'] as const) {
    if (file[section] !== undefined && defined[section] !== undefined) {
      merged[section] = { ...file[section], ...defined[section] };
    }
  }
  return merged as unknown as WalguardOptions;
}

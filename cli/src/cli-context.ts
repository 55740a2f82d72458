import type { BaseContext } from "clipanion";

/**
 * Configuration that `main.ts` reads from the environment once. Nothing below `main.ts` reads
 * `process.env`: commands receive these values through {@link CliContext}.
 */
export interface CliSettings {
  /**
   * Directory holding `profiles.yaml`: `$XDG_CONFIG_HOME/mottainai` when XDG_CONFIG_HOME is an
   * absolute path, `~/.config/mottainai` otherwise.
   */
  configDir: string;
  /** MOTTAINAI_SERVER: server URL overriding any profile; unset when empty. */
  server?: string;
  /** MOTTAINAI_TOKEN: API token overriding any profile; unset when empty. */
  token?: string;
  /** MOTTAINAI_PROFILE: profile to use instead of the current one; unset when empty. */
  profile?: string;
}

/**
 * The clipanion context every `mottainai` command runs with: the standard streams (real ones in
 * `main.ts`, fakes in tests), the settings and a signal that Ctrl-C aborts.
 */
export interface CliContext extends BaseContext {
  /** Environment-derived settings; see {@link CliSettings}. */
  settings: CliSettings;
  /**
   * Aborted when the user interrupts (Ctrl-C). Every RPC is cancelled with it, so streaming
   * commands such as `task log --follow` and `events tail` end cleanly.
   */
  signal: AbortSignal;
}

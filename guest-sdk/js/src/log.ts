/**
 * Logging into the host's log, tagged with the plugin's name: `log.info("...")`. Under `wasmop
 * test` and `wasmop run` the lines appear in the host's log at that level.
 */

/// <reference path="./host.d.ts" />
import { log as hostLog } from "wasmop:reconciler/log@0.2.0";

import type { WitLogLevel } from "./wit.js";

export type LogLevel = WitLogLevel;

function write(level: LogLevel, parts: unknown[]): void {
  hostLog(level, parts.map((p) => (typeof p === "string" ? p : JSON.stringify(p))).join(" "));
}

/** The host's log: `log.info("copied", name)`; non-string arguments are written as JSON. */
export const log = {
  trace: (...parts: unknown[]): void => write("trace", parts),
  debug: (...parts: unknown[]): void => write("debug", parts),
  info: (...parts: unknown[]): void => write("info", parts),
  warn: (...parts: unknown[]): void => write("warn", parts),
  error: (...parts: unknown[]): void => write("error", parts),
};

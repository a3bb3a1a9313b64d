/**
 * Read-only access to the host's cache, limited to what the plugin declared: its primary and
 * `owns` kinds (in its namespaces) and each lookup's kind within that lookup's namespace and label
 * selector. Anything else reads as absent. Mostly useful in `map`, which has no snapshot.
 */

/// <reference path="./host.d.ts" />
import { get as hostGet, list as hostList } from "wasmop:reconciler/cache@0.2.0";

import type { KubeObject } from "./k8s.js";
import { type Gvk, toWitGvk } from "./kinds.js";
import { ReconcileError } from "./errors.js";

function parse<T>(text: string, what: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw ReconcileError.permanent(`the cache returned ${what} that is not JSON: ${String(e)}`);
  }
}

/** One object, or `undefined` when it is not in the cache (or not declared). */
export function get<T extends KubeObject = KubeObject>(kind: Gvk, namespace: string | undefined, name: string): T | undefined {
  const text = hostGet(toWitGvk(kind), namespace || undefined, name);
  return text === undefined ? undefined : parse<T>(text, `${kind.kind} ${name}`);
}

/** Objects of a kind, optionally in one namespace and matching a label selector (`app=web`). */
export function list<T extends KubeObject = KubeObject>(
  kind: Gvk,
  options: { namespace?: string; labelSelector?: string } = {},
): T[] {
  return hostList(toWitGvk(kind), options.namespace || undefined, options.labelSelector || undefined).map((text) =>
    parse<T>(text, `a ${kind.kind}`),
  );
}

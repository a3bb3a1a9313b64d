/**
 * Write wasmop reconcilers in TypeScript or JavaScript.
 *
 * A wasmop plugin is a WebAssembly component implementing the `wasmop:reconciler@0.2.0` world
 * (`wit/reconciler.wit`), built from JavaScript by componentize-js (`wasmop build`): a pure
 * function from a `Snapshot` of one object (and what it owns) to the `Desired` state. The host does
 * every write — server-side apply of children, pruning, patches, status, deletions, events,
 * finalizers — with retries and backoff. A plugin has no network, filesystem, environment or
 * clock; it can only read the host's `cache` and write to its `log`.
 *
 * ```ts
 * import { Desired, Event, Metadata, type Plugin, exportPlugin, kinds } from "@wasmop/sdk";
 *
 * const hello: Plugin = {
 *   metadata: () => new Metadata("hello", "0.1.0", kinds.ConfigMap),
 *   reconcile: (s) => new Desired().event(Event.normal("Greeted", `Hello, ${s.name}!`)),
 * };
 *
 * export const { metadata, reconcile, map } = exportPlugin(hello);
 * ```
 *
 * The last line is the component's three exports; componentize-js finds them by name.
 * `Plugin<Deployment>` types `s.object` as the primary kind's object.
 */

import { Desired } from "./desired.js";
import { ReconcileError, WitFailure, toWitError } from "./errors.js";
import type { KubeObject } from "./k8s.js";
import { type ObjectKey, toWitKey } from "./kinds.js";
import { log } from "./log.js";
import { Metadata } from "./metadata.js";
import { Snapshot, Trigger } from "./snapshot.js";
import type { WitDesired, WitMetadata, WitObjectKey, WitSnapshot, WitTrigger } from "./wit.js";

export * as cache from "./cache.js";
export { type Condition, type ConditionStatus, carryOver, condition } from "./condition.js";
export { Desired, Event, type Patch } from "./desired.js";
export { ReconcileError, permanent, retry } from "./errors.js";
export type * from "./k8s.js";
export { type Gvk, type ObjectKey, type ObjectRef, apiVersion, gvk, isKind, kindOf, kinds, objectKey, objectRef, refOf, sameKind } from "./kinds.js";
export { type LogLevel, log } from "./log.js";
export { Lookup, Metadata, type Verb } from "./metadata.js";
export { type LookupResult, Snapshot, Trigger } from "./snapshot.js";
export type { Reason } from "./wit.js";

/**
 * What every plugin implements: its declaration, its reconcile function and, for plugins with
 * triggering lookups, its map function. A plugin keeps no state between calls: the host may run
 * several instances and start a fresh one at any time.
 */
export interface Plugin<T extends KubeObject = KubeObject> {
  /** The plugin's declaration, read once when the host loads it. */
  metadata(): Metadata;
  /**
   * One reconcile of one object: the state the host should make true. Throw a `ReconcileError`
   * (`retry(...)`, `permanent(...)`) when there is none; anything else thrown is a retry.
   */
  reconcile(snapshot: Snapshot<T>): Desired | Promise<Desired>;
  /**
   * Which primary objects a change to an object of a triggering lookup concerns
   * (`trigger.lookup` is the lookup's index); each is reconciled with reason `trigger`. It may read
   * the `cache`. Without it, none.
   */
  map?(trigger: Trigger): ObjectKey[] | Promise<ObjectKey[]>;
}

/** The component's exports, in the contract's form (what componentize-js binds). */
export interface Exports {
  metadata(): WitMetadata;
  reconcile(snapshot: WitSnapshot): WitDesired | Promise<WitDesired>;
  map(trigger: WitTrigger): WitObjectKey[] | Promise<WitObjectKey[]>;
}

/**
 * Turns a failure into what componentize-js maps to `result::err`: the reconcile error as the
 * thrown value's `payload`. Unexpected errors are logged with their stack first.
 */
function fail(what: string, thrown: unknown): never {
  if (!(thrown instanceof ReconcileError)) {
    const detail = thrown instanceof Error && thrown.stack ? `\n${thrown.stack}` : "";
    log.error(`${what}: ${thrown instanceof Error ? thrown.message : String(thrown)}${detail}`);
  }
  throw new WitFailure(toWitError(thrown));
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === "function";
}

function finish(desired: Desired): WitDesired {
  if (!(desired instanceof Desired)) {
    throw ReconcileError.permanent("reconcile must return a Desired (new Desired()...)");
  }
  const problems = desired.problems();
  if (problems.length > 0) throw ReconcileError.permanent(`the desired state is unusable: ${problems.join("; ")}`);
  try {
    return desired.toWit();
  } catch (e) {
    throw ReconcileError.permanent(`the desired state is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function keys(list: ObjectKey[]): WitObjectKey[] {
  return list.map(toWitKey);
}

/**
 * The component's `metadata`, `reconcile` and `map` exports for a plugin:
 * `export const { metadata, reconcile, map } = exportPlugin(plugin);` at the top level of the
 * module componentize-js builds. The metadata is computed once, here, so that componentize-js's
 * pre-initialisation (Wizer) snapshots it with the rest of the module.
 */
export function exportPlugin<T extends KubeObject = KubeObject>(plugin: Plugin<T>): Exports {
  const declared = plugin.metadata();
  const problems = declared.problems();
  if (problems.length > 0) throw new Error(`invalid plugin metadata: ${problems.join("; ")}`);
  const wit = declared.toWit();
  return {
    metadata: () => wit,
    reconcile(raw: WitSnapshot): WitDesired | Promise<WitDesired> {
      let answer: Desired | Promise<Desired>;
      try {
        // The primary object is of the declared primary kind: `T` is the plugin's word for it.
        answer = plugin.reconcile(Snapshot.fromWit(raw) as Snapshot<T>);
      } catch (e) {
        return fail("reconcile", e);
      }
      if (isPromise(answer)) {
        return answer.then(finish).catch((e: unknown) => fail("reconcile", e));
      }
      try {
        return finish(answer);
      } catch (e) {
        return fail("reconcile", e);
      }
    },
    map(raw: WitTrigger): WitObjectKey[] | Promise<WitObjectKey[]> {
      if (plugin.map === undefined) return [];
      let answer: ObjectKey[] | Promise<ObjectKey[]>;
      try {
        answer = plugin.map(Trigger.fromWit(raw));
      } catch (e) {
        return fail("map", e);
      }
      return isPromise(answer) ? answer.then(keys).catch((e: unknown) => fail("map", e)) : keys(answer);
    },
  };
}

// The host's imports of the `reconciler` world, as componentize-js binds them (see `wit.ts`).
// componentize-js links these module names to the component's imports; under node, the SDK's tests
// resolve them to a stand-in (`test/register.mjs`).

declare module "wasmop:reconciler/cache@0.2.0" {
  import type { WitGvk } from "./wit.js";
  export function get(kind: WitGvk, namespace: string | undefined, name: string): string | undefined;
  export function list(kind: WitGvk, namespace: string | undefined, labelSelector: string | undefined): string[];
}

declare module "wasmop:reconciler/log@0.2.0" {
  import type { WitLogLevel } from "./wit.js";
  export function log(level: WitLogLevel, message: string): void;
}

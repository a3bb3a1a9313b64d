// `node --import ./test/register.mjs`: resolves the component's host imports
// (`wasmop:reconciler/cache@0.2.0`, `wasmop:reconciler/log@0.2.0`) to the stand-in host of
// `fake-host.mjs`, so that the SDK runs under node without building a component.
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);

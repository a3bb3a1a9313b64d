// A stand-in for the host's `cache` and `log` imports under node: tests put objects in
// `host.objects` and read the lines logged from `host.logs`.
export const host = { objects: [], logs: [] };

const apiVersion = (k) => (k.group === "" ? k.version : `${k.group}/${k.version}`);
const matches = (k, o) => o.kind === k.kind && o.apiVersion === apiVersion(k);

export function get(kind, namespace, name) {
  const o = host.objects.find((o) => matches(kind, o) && o.metadata?.namespace === namespace && o.metadata?.name === name);
  return o === undefined ? undefined : JSON.stringify(o);
}

// Selectors: only `key=value` terms, which is what the tests use.
export function list(kind, namespace, selector) {
  const terms = (selector ?? "").split(",").filter(Boolean).map((t) => t.split("="));
  return host.objects
    .filter((o) => matches(kind, o) && (namespace === undefined || o.metadata?.namespace === namespace))
    .filter((o) => terms.every(([k, v]) => o.metadata?.labels?.[k] === v))
    .map((o) => JSON.stringify(o));
}

export function log(level, message) {
  host.logs.push({ level, message });
}

// Module resolution hook (see register.mjs): every `wasmop:` import is the stand-in host.
const HOST = new URL("./fake-host.mjs", import.meta.url).href;

export async function resolve(specifier, context, next) {
  if (specifier.startsWith("wasmop:reconciler/")) return { url: HOST, shortCircuit: true };
  return next(specifier, context);
}

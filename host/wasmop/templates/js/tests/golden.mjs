// Golden tests (`npm test`): every `<case>.snapshot.yaml` (a reconcile) and `<case>.trigger.yaml`
// (a `map` call) in this directory is run through the built component with `wasmop test`, and
// what it prints must equal `<case>.expected.yaml`. `WASMOP_BLESS=1 npm test` rewrites the
// expected files instead. `wasmop` is taken from PATH, or from the WASMOP variable.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const project = dirname(here);
const name = JSON.parse(readFileSync(join(project, "package.json"), "utf8")).name;
const wasm = process.env.WASMOP_PLUGIN ?? join(project, `${name}.wasm`);
const wasmop = process.env.WASMOP ?? "wasmop";
const bless = process.env.WASMOP_BLESS === "1";

if (!existsSync(wasm)) {
  console.error(`${wasm} is missing: run \`wasmop build\` first`);
  process.exit(1);
}
let passed = 0;
let failed = 0;
for (const file of readdirSync(here).sort()) {
  const kind = file.endsWith(".snapshot.yaml") ? "--snapshot" : file.endsWith(".trigger.yaml") ? "--trigger" : undefined;
  if (kind === undefined) continue;
  const testCase = file.replace(/\.(snapshot|trigger)\.yaml$/, "");
  const run = spawnSync(wasmop, ["test", wasm, kind, join(here, file)], { encoding: "utf8", env: { WASMOP_LOG: "warn", ...process.env } });
  const expectedFile = join(here, `${testCase}.expected.yaml`);
  if (run.status !== 0) {
    failed++;
    console.log(`FAIL ${testCase}: wasmop test failed\n${run.error ?? ""}${run.stderr}`);
  } else if (bless) {
    writeFileSync(expectedFile, run.stdout);
    passed++;
    console.log(`blessed ${testCase}`);
  } else if (existsSync(expectedFile) && readFileSync(expectedFile, "utf8").trim() === run.stdout.trim()) {
    passed++;
    console.log(`ok ${testCase}`);
  } else {
    failed++;
    console.log(`FAIL ${testCase}: the answer differs from ${testCase}.expected.yaml:\n${run.stdout}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);

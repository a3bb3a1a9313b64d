//! A fuzz driver for the embedded API server's parsers that runs on the stable toolchain, as a test:
//! mutation-based (no coverage feedback), seeded from the committed corpus in `fuzz/corpus/<target>/`.
//!
//! Targets: `label_selector`, `field_selector` (selector parsing and matching), `json_patch` (RFC 6902
//! decoding and application), `schema` (CRD structural schema validation, pruning and defaulting of
//! a `{"schema": …, "object": …}` pair), `protobuf` (kubectl's protobuf bodies), and `http`: whole
//! requests (method, path, query parameters, content type, body: JSON, YAML, protobuf, every patch
//! type, CRDs with arbitrary schemas) through the server's router against a live store.
//!
//! A finding is a panic (or, for `http`, a 500 caused by a panic, a storage error, or no answer
//! within 10 s). It is written to `target/fuzz-findings/` and fails the test; add it to the corpus
//! (`fuzz/corpus/<target>/regression-*`) with the fix, and every later run replays it first.
//!
//! `WASMOP_FUZZ_SECONDS` (default 5) is the total time over all targets; `WASMOP_FUZZ_SEED` replays
//! a run (the seed is printed); `WASMOP_FUZZ_TARGETS=a,b` picks targets. Longer runs:
//! `WASMOP_FUZZ_SECONDS=3600 cargo test --release -p wasmop-apiserver --test fuzz -- --nocapture`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use wasmop_apimachinery::{jsonpatch, protobuf, schema, selector};

/// Tokens inserted by the mutator: the syntax the parsers branch on.
const DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "true",
    "-1",
    "0",
    "1e309",
    "18446744073709551616",
    "\"$patch\":\"delete\"",
    "\"$patch\":\"replace\"",
    "\"$retainKeys\":[]",
    "\"$setElementOrder/containers\":[]",
    "\"$deleteFromPrimitiveList/finalizers\":[]",
    "\"op\":\"add\"",
    "\"op\":\"move\"",
    "\"op\":\"copy\"",
    "\"op\":\"test\"",
    "\"from\":\"/\"",
    "\"path\":\"/-\"",
    "/~1",
    "/~0",
    "~",
    "\"x-kubernetes-list-type\":\"map\"",
    "\"x-kubernetes-list-map-keys\":[\"name\"]",
    "\"x-kubernetes-preserve-unknown-fields\":true",
    "\"x-kubernetes-int-or-string\":true",
    "\"x-kubernetes-embedded-resource\":true",
    "\"default\":",
    "\"additionalProperties\":",
    "\"items\":",
    "\"properties\":",
    "\"anyOf\":[",
    "\"pattern\":\"(\"",
    "\"format\":\"date-time\"",
    "\"x-kubernetes-validations\":[{\"rule\":\"self.a > 1\"}]",
    " in (",
    " notin (",
    "!=",
    "==",
    "=",
    "!",
    ")",
    "metadata.name",
    "status.phase",
    "%",
    "%zz",
    "&",
    "?",
    "=true",
    "..",
    "/",
    "watch=true",
    "limit=-1",
    "continue=",
    "resourceVersion=99999",
    "dryRun=All",
    "fieldManager=",
    "\n",
    "---\n",
    "- ",
    ": ",
    "&a ",
    "*a",
    "!!binary ",
    "\u{0}",
    "\u{ffff}",
    "é",
    "k8s\u{0}\n",
];

/// One mutation round: 1–8 edits of `input`, sometimes spliced with another corpus entry.
fn mutate(rng: &mut StdRng, input: &[u8], corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..rng.random_range(1..=8) {
        let len = data.len();
        match rng.random_range(0..9) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] = rng.random();
            }
            2 => {
                let i = rng.random_range(0..=len);
                data.insert(i, rng.random());
            }
            3 if len > 0 => {
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..=16)).min(len);
                data.drain(start..end);
            }
            4 if len > 0 => {
                // Repeat a slice (deep nesting, long lists).
                let start = rng.random_range(0..len);
                let end = (start + rng.random_range(1..=32)).min(len);
                let piece = data[start..end].to_vec();
                let times = rng.random_range(1..=64);
                let at = rng.random_range(0..=data.len());
                for _ in 0..times {
                    data.splice(at..at, piece.iter().copied());
                }
            }
            5 | 6 => {
                let token = DICTIONARY[rng.random_range(0..DICTIONARY.len())].as_bytes();
                let at = rng.random_range(0..=len);
                data.splice(at..at, token.iter().copied());
            }
            7 if !corpus.is_empty() => {
                let other = &corpus[rng.random_range(0..corpus.len())];
                if !other.is_empty() {
                    let start = rng.random_range(0..other.len());
                    let end = rng.random_range(start..=other.len());
                    let at = rng.random_range(0..=len);
                    data.splice(at..at, other[start..end].iter().copied());
                }
            }
            _ if len > 1 => {
                let cut = rng.random_range(0..len);
                data.truncate(cut.max(1));
            }
            _ => data.push(b'{'),
        }
    }
    data.truncate(64 * 1024);
    data
}

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

fn load_corpus(target: &str) -> Vec<Vec<u8>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target))
        .unwrap_or_else(|e| panic!("the corpus of {target}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let corpus: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!corpus.is_empty(), "the corpus of {target} is empty");
    corpus
}

/// Saves a finding and fails.
fn report(target: &str, input: &[u8], what: &str) -> ! {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fuzz-findings");
    let _ = std::fs::create_dir_all(&dir);
    let hash = input.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    });
    let path = dir.join(format!("{target}-{hash:016x}"));
    let _ = std::fs::write(&path, input);
    // The default panic report again (the pure targets silence it while they run).
    drop(std::panic::take_hook());
    panic!(
        "fuzz finding in {target}: {what}\ninput saved to {}\ninput: {:?}",
        path.display(),
        String::from_utf8_lossy(input)
    );
}

/// Runs a pure target: every corpus entry, then mutations until `budget` is spent. Returns the
/// number of inputs tried.
/// A pure target: parses (and uses) one input; a panic is a finding.
type Target = fn(&[u8]);

fn run_pure(target: &str, budget: Duration, rng: &mut StdRng, f: Target) -> u64 {
    let corpus = load_corpus(target);
    let started = Instant::now();
    let mut runs = 0u64;
    let mut one = |input: &[u8]| {
        runs += 1;
        if let Err(panic) = std::panic::catch_unwind(|| f(input)) {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            report(target, input, &format!("panic: {msg}"));
        }
    };
    for input in &corpus {
        one(input);
    }
    while started.elapsed() < budget {
        let seed = &corpus[rng.random_range(0..corpus.len())];
        let input = mutate(rng, seed, &corpus);
        one(&input);
    }
    runs
}

fn text(input: &[u8]) -> String {
    String::from_utf8_lossy(input).into_owned()
}

fn sample_objects() -> Vec<Value> {
    vec![
        json!({"metadata": {"name": "a", "namespace": "default", "labels": {"app": "web", "tier": "1"}}, "status": {"phase": "Running"}}),
        json!({"metadata": {"name": "b", "labels": {}}, "spec": {"nodeName": "n1"}}),
        json!({"metadata": {"name": "c"}}),
    ]
}

fn label_selector(input: &[u8]) {
    if let Ok(sel) = selector::LabelSelector::parse(&text(input)) {
        for o in sample_objects() {
            sel.matches(o["metadata"]["labels"].as_object());
        }
    }
    if let Ok(v) = serde_json::from_slice::<Value>(input) {
        let _ = selector::LabelSelector::from_json(&v);
    }
}

fn field_selector(input: &[u8]) {
    if let Ok(sel) = selector::FieldSelector::parse(&text(input)) {
        let _ = sel.check_fields(Some(&["metadata.name", "metadata.namespace", "status.phase"]));
        for o in sample_objects() {
            sel.matches(&o);
        }
    }
}

fn json_patch(input: &[u8]) {
    let doc = json!({"metadata": {"name": "a", "labels": {"x": "1"}, "finalizers": ["f"]}, "data": {"k": "v"}, "list": [1, 2, 3]});
    for strict in [true, false] {
        let _ = jsonpatch::apply_text(&doc, &text(input), strict);
    }
}

fn schema_target(input: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(input) else {
        return;
    };
    let (Some(s), Some(o)) = (v.get("schema"), v.get("object")) else {
        return;
    };
    let mut object = o.clone();
    schema::apply_defaults(s, &mut object);
    schema::prune(s, &mut object);
    schema::validate(s, &object);
}

fn protobuf_target(input: &[u8]) {
    let _ = protobuf::decode(input, wasmop_apiserver::http::builtin_schemas::all());
}

/// A live server for the `http` target: a store in a temporary directory with a CRD and a few
/// objects for patches to land on, and its router called in-process.
struct Live {
    router: axum::Router,
    token: String,
    _server: wasmop_apiserver::ApiServer,
    _dir: tempfile::TempDir,
}

async fn live() -> Live {
    use tower::ServiceExt;
    let dir = tempfile::tempdir().unwrap();
    let mut config = wasmop_apiserver::Config::new(dir.path());
    config.insecure_http = true;
    let server = wasmop_apiserver::ApiServer::start(config).await.unwrap();
    let router = wasmop_apiserver::http::router(server.core().clone());
    let token = server.token().to_string();
    let live = Live {
        router,
        token,
        _server: server,
        _dir: dir,
    };
    for seed in load_corpus("http") {
        if String::from_utf8_lossy(&seed).starts_with("POST") {
            let req = request(&seed, &live.token).unwrap();
            let _ = live.router.clone().oneshot(req).await;
        }
    }
    live
}

/// `METHOD PATH?QUERY`, header lines, a blank line, the body.
fn request(input: &[u8], token: &str) -> Option<http::Request<axum::body::Body>> {
    let split = input.windows(2).position(|w| w == b"\n\n").unwrap_or(input.len());
    let head = std::str::from_utf8(&input[..split]).ok()?;
    let body = input.get(split + 2..).unwrap_or_default().to_vec();
    let mut lines = head.lines();
    let (method, uri) = lines.next()?.split_once(' ')?;
    let mut b = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {token}"));
    for line in lines {
        let (k, v) = line.split_once(':')?;
        b = b.header(k.trim(), v.trim());
    }
    b.body(axum::body::Body::from(body)).ok()
}

/// Answers per status class (1xx…5xx; 0: not a request), to see the mutations still reach the verbs.
type Classes = [u64; 6];

async fn http_one(live: &Live, input: &[u8], classes: &mut Classes) {
    use tower::ServiceExt;
    let Some(req) = request(input, &live.token) else {
        classes[0] += 1;
        return;
    };
    let router = live.router.clone();
    let call = tokio::spawn(async move {
        let resp = router.oneshot(req).await.expect("infallible");
        let status = resp.status();
        // Watches stream forever: take what comes within 50 ms.
        let body = tokio::time::timeout(
            Duration::from_millis(50),
            axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024),
        )
        .await;
        (status, body.ok().and_then(Result::ok).unwrap_or_default())
    });
    match tokio::time::timeout(Duration::from_secs(10), call).await {
        Err(_) => report("http", input, "no answer within 10 s"),
        Ok(Err(e)) if e.is_panic() => report("http", input, &format!("handler panicked: {e}")),
        Ok(Err(e)) => report("http", input, &format!("handler failed: {e}")),
        Ok(Ok((status, body))) => {
            classes[usize::from(status.as_u16() / 100).min(5)] += 1;
            let msg = String::from_utf8_lossy(&body);
            if status == 500 && (msg.contains("panicked") || msg.contains("storage error")) {
                report("http", input, &format!("500: {msg}"));
            }
            if status == 500 && std::env::var_os("WASMOP_FUZZ_VERBOSE").is_some() {
                println!("fuzz: http: 500 {}", msg.trim());
            }
        }
    }
}

fn run_http(budget: Duration, rng: &mut StdRng) -> (u64, Classes) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let live = live().await;
        let corpus = load_corpus("http");
        let started = Instant::now();
        let mut runs = 0u64;
        let mut classes = Classes::default();
        for input in &corpus {
            http_one(&live, input, &mut classes).await;
            runs += 1;
        }
        while started.elapsed() < budget {
            let seed = &corpus[rng.random_range(0..corpus.len())];
            // Mostly the body alone, so that the request still reaches a verb.
            let split = seed
                .windows(2)
                .position(|w| w == b"\n\n")
                .map_or(seed.len(), |i| i + 2);
            let input = if rng.random_bool(0.7) {
                let mut input = seed[..split].to_vec();
                input.extend(mutate(rng, &seed[split..], &corpus));
                input
            } else {
                mutate(rng, seed, &corpus)
            };
            http_one(&live, &input, &mut classes).await;
            runs += 1;
        }
        (runs, classes)
    })
}

#[test]
fn fuzz_parsers() {
    let total = std::env::var("WASMOP_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(5.0);
    let seed = std::env::var("WASMOP_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| rand::rng().random());
    let wanted = std::env::var("WASMOP_FUZZ_TARGETS").ok();
    let pure: [(&str, Target); 5] = [
        ("label_selector", label_selector),
        ("field_selector", field_selector),
        ("json_patch", json_patch),
        ("schema", schema_target),
        ("protobuf", protobuf_target),
    ];
    let chosen = |name: &str| wanted.as_deref().is_none_or(|w| w.split(',').any(|t| t == name));
    let count = pure.iter().filter(|(n, _)| chosen(n)).count() + usize::from(chosen("http"));
    let budget = Duration::from_secs_f64(total / count.max(1) as f64);
    println!("fuzz: seed {seed} (WASMOP_FUZZ_SEED={seed} replays it), {budget:?} per target");
    // Panics the targets catch are findings; keep their default report off the output meanwhile.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut rng = StdRng::seed_from_u64(seed);
    for (name, f) in pure {
        if chosen(name) {
            let runs = run_pure(name, budget, &mut rng, f);
            println!("fuzz: {name}: {runs} inputs");
        }
    }
    std::panic::set_hook(hook);
    if chosen("http") {
        let (runs, c) = run_http(budget, &mut rng);
        println!(
            "fuzz: http: {runs} inputs: {} not a request, {} 2xx, {} 3xx, {} 4xx, {} 5xx",
            c[0], c[2], c[3], c[4], c[5]
        );
    }
}

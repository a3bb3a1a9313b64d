//! `wasmop new` + `wasmop build` + `wasmop test` from an empty directory, per language: the
//! generated project builds and answers its own golden file through `wasmop test`. The Python and
//! JavaScript builds use the toolchain cache in `target/` (as CI does); the Rust one its own target
//! directory there, kept between runs.

use std::path::Path;

use crate::langs::{target, toolchains};
use crate::support::wasmop;

fn run(cmd: &mut std::process::Command) -> String {
    let out = cmd.env("WASMOP_LOG", "warn").output().expect("wasmop runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `wasmop new --lang LANG demo-LANG` in an empty directory, `wasmop build` there, then the
/// project's `greet` fixture through the `wasmop test` binary.
async fn new_build_test(lang: &str, extra: &[&str], env: &[(&str, &Path)]) {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("demo-{lang}");
    let mut new = wasmop();
    new.current_dir(dir.path())
        .args(["new", "--lang", lang, &name])
        .args(extra);
    let said = run(&mut new);
    assert!(said.contains(&format!("wasmop build {name}")), "{said}");
    let project = dir.path().join(&name);
    assert!(project.join("tests/greet.snapshot.yaml").is_file());

    let mut build = wasmop();
    build
        .current_dir(&project)
        .arg("build")
        .arg("--toolchains")
        .arg(toolchains());
    for (k, v) in env {
        build.env(k, v);
    }
    let started = std::time::Instant::now();
    let printed = run(&mut build);
    eprintln!("wasmop build ({lang}) took {:?}", started.elapsed());
    let wasm = project.join(format!("{name}.wasm"));
    assert_eq!(printed.trim(), wasm.display().to_string());

    let got = run(wasmop()
        .arg("test")
        .arg(&wasm)
        .arg("--snapshot")
        .arg(project.join("tests/greet.snapshot.yaml")));
    let got: serde_yaml::Value = serde_yaml::from_str(&got).unwrap();
    let want: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(project.join("tests/greet.expected.yaml")).unwrap())
            .unwrap();
    assert_eq!(got, want);
    // One fixture only: each `wasmop test` process compiles the component (for Python and
    // JavaScript, seconds of CPU), and a fresh build is not byte-identical to the last one (the
    // snapshot of an initialised interpreter), so no compile cache would help.
}

#[tokio::test]
async fn a_new_rust_plugin_builds_and_passes_its_golden_test() {
    // The Rust SDK of this checkout (the default of --sdk); a target directory kept in target/ so
    // that the SDK's dependencies build once.
    let cargo_target = target().join("wasmop-scaffold-rust");
    // Without the template's LTO and single codegen unit: the same code, linked in a few seconds
    // instead of half a minute of CPU.
    let (lto, units) = (Path::new("false"), Path::new("16"));
    new_build_test(
        "rust",
        &[],
        &[
            ("CARGO_TARGET_DIR", &cargo_target),
            ("CARGO_PROFILE_RELEASE_LTO", lto),
            ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", units),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_new_python_plugin_builds_and_passes_its_golden_test() {
    new_build_test("python", &[], &[]).await;
}

#[tokio::test]
async fn a_new_js_plugin_builds_and_passes_its_golden_test() {
    new_build_test("js", &[], &[]).await;
}

#[test]
fn js_build_errors_name_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("package.json"), "{\"name\": \"x\"}").unwrap();
    // Without node on PATH the error says what to install.
    let empty = tempfile::tempdir().unwrap();
    let out = wasmop()
        .arg("build")
        .arg(dir.path())
        .arg("--toolchains")
        .arg(empty.path())
        .env("PATH", empty.path())
        .env("WASMOP_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("node is required to build JavaScript/TypeScript plugins")
            && stderr.contains("Node.js"),
        "{stderr}"
    );
    // A project without an entry module says where it looked.
    let out = wasmop()
        .arg("build")
        .arg(dir.path())
        .arg("--toolchains")
        .arg(toolchains())
        .env("WASMOP_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("src/plugin.ts"), "{stderr}");
    // A type error fails the build with tsc's message.
    let project = dir.path().join("typo");
    let said = run(wasmop()
        .args(["new", "--lang", "js"])
        .arg("typo")
        .arg("--dir")
        .arg(&project));
    assert!(said.contains("JavaScript/TypeScript"), "{said}");
    let plugin = project.join("src/plugin.ts");
    let source = std::fs::read_to_string(&plugin).unwrap();
    std::fs::write(
        &plugin,
        source.replace("s.reason !== \"change\"", "s.reason !== \"changed\""),
    )
    .unwrap();
    let out = wasmop()
        .arg("build")
        .arg(&project)
        .arg("--toolchains")
        .arg(toolchains())
        .env("WASMOP_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("type-checking (tsc) failed") && stderr.contains("src/plugin.ts"),
        "{stderr}"
    );
}

#[test]
fn build_errors_name_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let out = wasmop()
        .arg("build")
        .arg(dir.path())
        .env("WASMOP_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not a plugin project"), "{stderr}");

    std::fs::write(dir.path().join("pyproject.toml"), "[project]\nname = \"x\"\n").unwrap();
    let out = wasmop()
        .arg("build")
        .arg(dir.path())
        .arg("--toolchains")
        .arg(toolchains())
        .env("WASMOP_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[tool.wasmop]"), "{stderr}");

    // Without python3 on PATH the error says what to install.
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"x\"\n[tool.wasmop]\nplugin = \"plugin:Greeter\"\n",
    )
    .unwrap();
    let empty = tempfile::tempdir().unwrap();
    let out = wasmop()
        .arg("build")
        .arg(dir.path())
        .arg("--toolchains")
        .arg(empty.path())
        .env("PATH", empty.path())
        .env("WASMOP_LOG", "warn")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("python3 is required to build Python plugins"),
        "{stderr}"
    );

    let out = wasmop()
        .current_dir(dir.path())
        .args(["new", "--lang", "python", "Not_A_Name"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid plugin name"));
}

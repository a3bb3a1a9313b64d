//! Builds the example-plugins workspace with `cargo build --release --target wasm32-wasip2` into its
//! own target directory (`<target>/wasm-plugins`, so the nested cargo never waits for the lock of
//! the build that runs this script), then copies the components to stable, hyphenated names:
//! `<target>/wasm-plugins/plugins/<name>.wasm` for the examples, `.../test-plugins/<name>.wasm` for
//! the test fixtures (`[package.metadata.wasmop] test-only = true`), and every
//! `example-plugins/<plugin>/crd.yaml` to `.../crds/<singular>.yaml`.
//!
//! `WASMOP_SKIP_PLUGIN_BUILD=1` skips the nested build (the paths are still set).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .join("../..")
        .canonicalize()
        .expect("the repository root");
    let examples = root.join("example-plugins");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let wasm_target = target_dir(&out_dir).join("wasm-plugins");

    for dir in ["wit", "guest-sdk", "example-plugins"] {
        watch(&root.join(dir));
    }
    println!("cargo:rerun-if-env-changed=WASMOP_SKIP_PLUGIN_BUILD");

    let members = members(&examples);
    let skip = env::var_os("WASMOP_SKIP_PLUGIN_BUILD").is_some_and(|v| v == "1");
    if !skip {
        check_wasm_target();
        build(&examples, &wasm_target);
    }

    let plugins = wasm_target.join("plugins");
    let test_plugins = wasm_target.join("test-plugins");
    let crds = wasm_target.join("crds");
    for dir in [&plugins, &test_plugins, &crds] {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    }
    let release = wasm_target.join("wasm32-wasip2/release");
    for m in &members {
        let built = release.join(format!("{}.wasm", m.name.replace('-', "_")));
        let dest = if m.test_only { &test_plugins } else { &plugins };
        if built.is_file() {
            copy(&built, &dest.join(format!("{}.wasm", m.name)));
        } else if !skip {
            panic!("the build did not produce {}", built.display());
        }
        let crd = examples.join(&m.dir).join("crd.yaml");
        if crd.is_file() {
            let text = fs::read_to_string(&crd).expect("read crd.yaml");
            let singular = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("singular:"))
                .map(|s| s.trim().trim_matches('"').to_string())
                .unwrap_or_else(|| m.name.clone());
            copy(&crd, &crds.join(format!("{singular}.yaml")));
        }
    }

    let list = |test_only: bool| {
        members
            .iter()
            .filter(|m| m.test_only == test_only)
            .map(|m| format!("{:?}", m.name))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let generated = format!(
        "/// Where the example plugins are: `<name>.wasm`.\n\
         const PLUGINS_DIR: &str = {plugins:?};\n\
         /// Where the test-only plugins are: `<name>.wasm`.\n\
         const TEST_PLUGINS_DIR: &str = {test_plugins:?};\n\
         /// Where the CRDs are: `<singular>.yaml`.\n\
         const CRDS_DIR: &str = {crds:?};\n\
         /// The example-plugins source directory.\n\
         const SOURCE_DIR: &str = {examples:?};\n\
         /// The example plugins, by crate name.\n\
         pub const EXAMPLES: &[&str] = &[{}];\n\
         /// The plugins that only exist for the host's tests, by crate name.\n\
         pub const TEST_PLUGINS: &[&str] = &[{}];\n",
        list(false),
        list(true),
    );
    fs::write(out_dir.join("paths.rs"), generated).expect("write paths.rs");
}

/// The outer build's target directory: the ancestor of OUT_DIR that cargo tagged with
/// CACHEDIR.TAG (`<target>/<profile>/build/<pkg>-<hash>/out` or with a `<triple>/` level).
fn target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|a| a.join("CACHEDIR.TAG").is_file())
        .or_else(|| out_dir.ancestors().nth(4))
        .expect("a target directory above OUT_DIR")
        .to_path_buf()
}

/// One crate of the example-plugins workspace.
struct Member {
    /// Its directory under example-plugins/.
    dir: String,
    /// Its package name (hyphenated).
    name: String,
    test_only: bool,
}

/// The workspace members, from `members = [...]` in example-plugins/Cargo.toml.
fn members(examples: &Path) -> Vec<Member> {
    let manifest = fs::read_to_string(examples.join("Cargo.toml")).expect("read example-plugins/Cargo.toml");
    let start = manifest
        .find("\nmembers")
        .expect("example-plugins/Cargo.toml lists its members");
    let list = &manifest[start..];
    let list = &list[list.find('[').expect("members = [") + 1..list.find(']').expect("]")];
    list.split(',')
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .map(|dir| {
            let toml = fs::read_to_string(examples.join(&dir).join("Cargo.toml"))
                .unwrap_or_else(|e| panic!("reading example-plugins/{dir}/Cargo.toml: {e}"));
            let name = toml
                .lines()
                .find_map(|l| l.trim().strip_prefix("name").map(str::trim))
                .and_then(|l| l.strip_prefix('='))
                .map(|n| n.trim().trim_matches('"').to_string())
                .unwrap_or_else(|| dir.clone());
            let test_only = toml.lines().any(|l| l.replace(' ', "") == "test-only=true");
            Member { dir, name, test_only }
        })
        .collect()
}

/// `cargo:rerun-if-changed` for every source file under `dir` (not `target/`, not dot files), so
/// that a build in place elsewhere does not look like a change.
fn watch(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            watch(&path);
        } else {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// Installs the wasm32-wasip2 standard library with rustup when it is missing (so the README's
/// commands work on a fresh machine), and fails the build with the fix when that is not possible.
fn check_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let missing = |root: &Path| !root.join("lib/rustlib/wasm32-wasip2").is_dir();
    if let Some(sysroot) = sysroot.as_deref().filter(|r| missing(r)) {
        // rustup installs into the toolchain this build runs with (RUSTUP_TOOLCHAIN is set by it).
        let mut add = Command::new("rustup");
        // Build-script stdout is read by cargo: keep rustup's chatter on stderr.
        add.args(["target", "add", "wasm32-wasip2"])
            .stdout(std::process::Stdio::null());
        if let Some(toolchain) = env::var_os("RUSTUP_TOOLCHAIN") {
            add.arg("--toolchain").arg(toolchain);
        }
        println!(
            "cargo:warning=installing the wasm32-wasip2 target with rustup (needed by the example plugins)"
        );
        let installed = add.status().is_ok_and(|s| s.success());
        if installed && !missing(sysroot) {
            return;
        }
        panic!(
            "\n\nThe example plugins build for the wasm32-wasip2 target, which this toolchain ({}) does \
             not have.\nInstall it with:\n\n    rustup target add wasm32-wasip2\n\n(or set \
             WASMOP_SKIP_PLUGIN_BUILD=1 to build without the plugins)\n",
            sysroot.display()
        );
    }
}

/// The nested `cargo build`, with the outer build's settings removed from its environment.
fn build(examples: &Path, wasm_target: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--target",
        "wasm32-wasip2",
        "--manifest-path",
    ])
    .arg(examples.join("Cargo.toml"))
    .arg("--target-dir")
    .arg(wasm_target)
    .current_dir(examples);
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let inherited_build_setting = [
            "RUSTFLAGS",
            "RUSTDOCFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
            "CARGO_ENCODED_RUSTDOCFLAGS",
            "CARGO_BUILD_RUSTFLAGS",
            "CARGO_BUILD_TARGET",
            "CARGO_BUILD_TARGET_DIR",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_CRATE_NAME",
            "RUSTC_WORKSPACE_WRAPPER",
            "CLIPPY_ARGS",
            "CLIPPY_CONF_DIR",
            "OUT_DIR",
            "TARGET",
            "HOST",
            "PROFILE",
            "OPT_LEVEL",
            "DEBUG",
            "NUM_JOBS",
            "RUSTC_LINKER",
        ]
        .contains(&key.as_str())
            || [
                "CARGO_TARGET_",
                "CARGO_PROFILE_",
                "CARGO_CFG_",
                "CARGO_FEATURE_",
                "CARGO_PKG_",
                "DEP_",
                "__CARGO",
            ]
            .iter()
            .any(|p| key.starts_with(p));
        if inherited_build_setting {
            cmd.env_remove(&key);
        }
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running cargo to build example-plugins/: {e}"));
    if !out.status.success() {
        panic!(
            "\n\nbuilding example-plugins/ for wasm32-wasip2 failed ({}):\n\n{}\n",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Copies through a temporary file and a rename, so readers never see half a file; leaves an
/// identical destination alone.
fn copy(from: &Path, to: &Path) {
    let data = fs::read(from).unwrap_or_else(|e| panic!("reading {}: {e}", from.display()));
    if fs::read(to).is_ok_and(|old| old == data) {
        return;
    }
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, &data).unwrap_or_else(|e| panic!("writing {}: {e}", tmp.display()));
    fs::rename(&tmp, to).unwrap_or_else(|e| panic!("renaming to {}: {e}", to.display()));
}

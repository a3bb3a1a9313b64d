//! Rust plugin projects: a cdylib crate depending on the wasmop Rust SDK by path, built with
//! `cargo build --release --target wasm32-wasip2`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BuildError, Toolchains, run_step, validate_name, write_template};

const LANG: &str = "Rust";

/// The template, embedded (`host/wasmop/templates/rust/`).
const TEMPLATE: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../templates/rust/Cargo.toml")),
    (
        "rust-toolchain.toml",
        include_str!("../../templates/rust/rust-toolchain.toml"),
    ),
    (".gitignore", include_str!("../../templates/rust/gitignore")),
    ("src/lib.rs", include_str!("../../templates/rust/src/lib.rs")),
];

/// The SDK next to the sources this binary was built from (`guest-sdk/` of the checkout), if it is
/// still there: the default of `wasmop new --sdk` for people running wasmop from a checkout. Only
/// in a build with the cargo feature `examples` (the default): the production build carries no
/// build-machine paths, and asks for `--sdk`.
#[cfg(feature = "examples")]
pub fn default_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| sdk.canonicalize().unwrap_or(sdk))
}

/// Without the `examples` feature there is no checkout to default to.
#[cfg(not(feature = "examples"))]
pub fn default_sdk() -> Option<PathBuf> {
    None
}

/// `wasmop new --lang rust` with the default SDK.
pub fn new(dir: &Path, name: &str) -> Result<(), BuildError> {
    new_with_sdk(dir, name, None)
}

/// Creates the project, depending on the SDK at `sdk` (default: [`default_sdk`]). The SDK's
/// `Cargo.lock` is copied in, so the project starts from the dependency versions the SDK is tested
/// with (and builds without a registry index update when they are in cargo's cache).
pub fn new_with_sdk(dir: &Path, name: &str, sdk: Option<&Path>) -> Result<(), BuildError> {
    validate_name(name)?;
    let sdk = match sdk {
        Some(sdk) => std::path::absolute(sdk).map_err(BuildError::io(sdk))?,
        None => default_sdk().ok_or_else(|| BuildError::MissingTool {
            tool: "the wasmop Rust SDK".into(),
            lang: LANG,
            hint: "pass --sdk PATH (or set WASMOP_SDK) to the guest-sdk/ directory of a wasmop checkout"
                .into(),
        })?,
    };
    if !sdk.join("Cargo.toml").is_file() {
        return Err(BuildError::Project {
            what: "no Cargo.toml of the wasmop SDK",
            path: sdk,
            reason: "--sdk must name the guest-sdk/ directory of a wasmop checkout".into(),
        });
    }
    let sdk_text = sdk.to_string_lossy().replace('\\', "/");
    write_template(dir, TEMPLATE, &[("name", name), ("sdk", &sdk_text)])?;
    let lock = sdk.join("Cargo.lock");
    if lock.is_file() {
        let to = dir.join("Cargo.lock");
        std::fs::copy(&lock, &to).map_err(BuildError::io(&to))?;
    }
    Ok(())
}

/// Builds the crate in `dir` for `wasm32-wasip2` and copies the component to `out`. The artifact
/// is found from cargo's JSON messages, so a `CARGO_TARGET_DIR` or workspace target directory is
/// followed.
pub fn build(dir: &Path, out: &Path, _tools: &Toolchains) -> Result<PathBuf, BuildError> {
    if !super::has_tool("cargo") {
        return Err(BuildError::MissingTool {
            tool: "cargo".into(),
            lang: LANG,
            hint: "install Rust with rustup (https://rustup.rs), then `rustup target add wasm32-wasip2`"
                .into(),
        });
    }
    let stdout = run_step(
        "cargo build --release --target wasm32-wasip2",
        dir,
        Command::new("cargo").args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--message-format=json-render-diagnostics",
        ]),
    )?;
    let wasm = artifact(&stdout).ok_or_else(|| BuildError::Project {
        what: "no .wasm built",
        path: dir.to_path_buf(),
        reason: "cargo built no cdylib: is `crate-type = [\"cdylib\"]` in [lib]?".into(),
    })?;
    std::fs::copy(&wasm, out).map_err(BuildError::io(out))?;
    Ok(out.to_path_buf())
}

/// The last `.wasm` file among cargo's `compiler-artifact` messages (the root crate is last).
fn artifact(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .filter_map(|m| {
            m["filenames"].as_array()?.iter().find_map(|f| {
                let f = f.as_str()?;
                f.ends_with(".wasm").then(|| PathBuf::from(f))
            })
        })
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_component_is_found_in_cargo_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","filenames":["/t/libserde.rlib"]}"#,
            "\n",
            r#"{"reason":"compiler-artifact","filenames":["/t/wasm32-wasip2/release/demo.wasm"]}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            artifact(messages),
            Some(PathBuf::from("/t/wasm32-wasip2/release/demo.wasm"))
        );
        assert_eq!(artifact(r#"{"reason":"build-finished"}"#), None);
    }

    #[test]
    fn a_new_project_depends_on_the_given_sdk() {
        let dir = tempfile::tempdir().unwrap();
        let sdk = dir.path().join("sdk");
        std::fs::create_dir(&sdk).unwrap();
        std::fs::write(sdk.join("Cargo.toml"), "[package]").unwrap();
        let project = dir.path().join("demo");
        new_with_sdk(&project, "demo", Some(&sdk)).unwrap();
        let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"demo\""), "{manifest}");
        assert!(
            manifest.contains(&format!("path = \"{}\"", sdk.display())),
            "{manifest}"
        );
        let lib = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
        assert!(lib.contains("Metadata::new(\"demo\""), "{lib}");
        assert!(project.join("tests/greet.expected.yaml").is_file());

        let err = new_with_sdk(&dir.path().join("other"), "other", Some(dir.path())).unwrap_err();
        assert!(err.to_string().contains("--sdk"), "{err}");
        let err = new_with_sdk(&dir.path().join("bad"), "Bad", Some(&sdk)).unwrap_err();
        assert!(matches!(err, BuildError::InvalidName { .. }), "{err}");
    }
}

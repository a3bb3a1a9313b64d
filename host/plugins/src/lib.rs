//! The example plugins (`example-plugins/`), built to WebAssembly components by this crate's build
//! script whenever `wit/`, `guest-sdk/` or `example-plugins/` change, and shared by every test and by
//! `wasmop dev`: depend on this crate and ask it where they are.
//!
//! The build runs `cargo build --release --target wasm32-wasip2` in `<target>/wasm-plugins` and
//! copies the components to stable names: [`plugins_dir`] holds the examples as `<name>.wasm`
//! (hyphenated crate names: `database-operator.wasm`), [`test_plugins_dir`] the fixtures only the
//! host's tests use (`trap`, `spin`, `hog`, `sneaky`), [`crds_dir`] the examples' CRDs as
//! `<singular>.yaml`. It needs the `wasm32-wasip2` target (`rustup target add wasm32-wasip2`);
//! `WASMOP_SKIP_PLUGIN_BUILD=1` builds this crate without building the plugins.

use std::path::PathBuf;

include!(concat!(env!("OUT_DIR"), "/paths.rs"));

/// The directory of the example plugins' components, `<name>.wasm` each (no test fixtures: this is
/// what `wasmop dev` loads).
pub fn plugins_dir() -> PathBuf {
    PathBuf::from(PLUGINS_DIR)
}

/// The directory of the test-only plugins' components (`trap`, `spin`, `hog`, `sneaky`).
pub fn test_plugins_dir() -> PathBuf {
    PathBuf::from(TEST_PLUGINS_DIR)
}

/// The component of a plugin by crate name, example or test-only: `plugin_path("pdb-guard")`.
/// Underscores are accepted for hyphens. The path is returned even if no such plugin exists.
pub fn plugin_path(name: &str) -> PathBuf {
    let name = name.trim_end_matches(".wasm").replace('_', "-");
    let dir = if TEST_PLUGINS.contains(&name.as_str()) {
        test_plugins_dir()
    } else {
        plugins_dir()
    };
    dir.join(format!("{name}.wasm"))
}

/// The directory of the examples' CustomResourceDefinitions, `<singular>.yaml` each
/// (`database.yaml`), copied from `example-plugins/<plugin>/crd.yaml`.
pub fn crds_dir() -> PathBuf {
    PathBuf::from(CRDS_DIR)
}

/// The sample objects for `wasmop dev` (`example-plugins/samples/`, applied in file name order;
/// they need the CRDs first).
pub fn samples_dir() -> PathBuf {
    source_dir().join("samples")
}

/// The example-plugins source directory (one crate per plugin, golden fixtures in `<plugin>/tests/`).
pub fn source_dir() -> PathBuf {
    PathBuf::from(SOURCE_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plugin_was_built() {
        if std::env::var_os("WASMOP_SKIP_PLUGIN_BUILD").is_some_and(|v| v == "1") {
            return;
        }
        for name in EXAMPLES.iter().chain(TEST_PLUGINS) {
            let path = plugin_path(name);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // A component, not a core module: layer 1 in the header.
            assert_eq!(&bytes[..8], b"\0asm\x0d\0\x01\0", "{}", path.display());
        }
        assert!(plugin_path("database_operator").ends_with("plugins/database-operator.wasm"));
        assert!(plugin_path("trap").ends_with("test-plugins/trap.wasm"));
        assert!(crds_dir().join("database.yaml").is_file());
        assert!(samples_dir().join("10-database.yaml").is_file());
    }
}

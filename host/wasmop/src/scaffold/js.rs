//! JavaScript/TypeScript plugin projects: `new` writes the template (`templates/js/`), `build` turns
//! a project with a `package.json` into a component.
//!
//! The build, in the project directory:
//! 1. the project's own npm dependencies, if it declares any (`npm ci` with a lockfile, else
//!    `npm install`);
//! 2. the SDK, `@wasmop/sdk`, written into `node_modules/@wasmop/sdk` from the copy of
//!    `guest-sdk/js` embedded in this binary, so it always matches the host's contract (it is not
//!    on the npm registry);
//! 3. `tsc --noEmit` when the project has a `tsconfig.json` (type errors fail the build);
//! 4. esbuild bundles the entry (`main` of `package.json`, else `src/plugin.ts`/`.js`) into one ES
//!    module under `.wasmop-build/`, the host's `wasmop:` imports left to componentize-js;
//! 5. componentize-js builds the component against the embedded `wit/reconciler.wit`, without the
//!    http and fetch-event features (a plugin has no network); it pre-initialises the module with
//!    Wizer, so the module's top level (and the plugin's metadata) runs once, at build time.
//!
//! TypeScript, esbuild and componentize-js are installed once, at the versions pinned by the
//! lockfile in `templates/js/toolchain/`, with `npm ci` into the toolchain cache; only node and npm
//! must be on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{BuildError, Toolchains, has_tool, run_step, validate_name, write_template};

const LANG: &str = "JavaScript/TypeScript";

/// The toolchain's directory name under the cache: the pinned versions, as in
/// `templates/js/toolchain/package.json` (a unit test keeps them equal).
const TOOLCHAIN: (&str, &str) = (
    "js",
    "componentize-js-0.23.0_esbuild-0.25.12_preview2-shim-0.25.0_typescript-5.9.3",
);
const TOOLCHAIN_PACKAGE: &str = include_str!("../../templates/js/toolchain/package.json");
const TOOLCHAIN_LOCK: &str = include_str!("../../templates/js/toolchain/package-lock.json");

/// The contract the component is built for.
const WIT: &str = include_str!("../../../../wit/reconciler.wit");

/// `@wasmop/sdk` (`guest-sdk/js`): the files a project needs, as they are in the repository.
const SDK: &[(&str, &str)] = &[
    (
        "package.json",
        include_str!("../../../../guest-sdk/js/package.json"),
    ),
    ("README.md", include_str!("../../../../guest-sdk/js/README.md")),
    (
        "src/cache.ts",
        include_str!("../../../../guest-sdk/js/src/cache.ts"),
    ),
    (
        "src/condition.ts",
        include_str!("../../../../guest-sdk/js/src/condition.ts"),
    ),
    (
        "src/desired.ts",
        include_str!("../../../../guest-sdk/js/src/desired.ts"),
    ),
    (
        "src/errors.ts",
        include_str!("../../../../guest-sdk/js/src/errors.ts"),
    ),
    (
        "src/host.d.ts",
        include_str!("../../../../guest-sdk/js/src/host.d.ts"),
    ),
    (
        "src/index.ts",
        include_str!("../../../../guest-sdk/js/src/index.ts"),
    ),
    ("src/k8s.ts", include_str!("../../../../guest-sdk/js/src/k8s.ts")),
    (
        "src/kinds.ts",
        include_str!("../../../../guest-sdk/js/src/kinds.ts"),
    ),
    ("src/log.ts", include_str!("../../../../guest-sdk/js/src/log.ts")),
    (
        "src/metadata.ts",
        include_str!("../../../../guest-sdk/js/src/metadata.ts"),
    ),
    (
        "src/snapshot.ts",
        include_str!("../../../../guest-sdk/js/src/snapshot.ts"),
    ),
    ("src/wit.ts", include_str!("../../../../guest-sdk/js/src/wit.ts")),
];

/// The project template; `{{name}}` is the plugin's name. Its golden fixtures are those of the Rust
/// template: the plugins behave the same.
const TEMPLATE: &[(&str, &str)] = &[
    ("package.json", include_str!("../../templates/js/package.json")),
    ("tsconfig.json", include_str!("../../templates/js/tsconfig.json")),
    ("src/plugin.ts", include_str!("../../templates/js/src/plugin.ts")),
    (".gitignore", include_str!("../../templates/js/gitignore")),
    (
        "tests/golden.mjs",
        include_str!("../../templates/js/tests/golden.mjs"),
    ),
];

/// Where a build keeps what it generates, inside the project.
const BUILD_DIR: &str = ".wasmop-build";

fn missing(tool: &str) -> BuildError {
    BuildError::MissingTool {
        tool: tool.to_string(),
        lang: LANG,
        hint:
            "install Node.js 20 or later with npm (e.g. `apt-get install nodejs npm`) and make sure `node` \
               and `npm` are on PATH"
                .to_string(),
    }
}

/// Creates a TypeScript project named `name` in `dir`: `src/plugin.ts`, two golden fixtures, and
/// the SDK in `node_modules/` so that an editor finds its types before the first build.
pub fn new(dir: &Path, name: &str) -> Result<(), BuildError> {
    validate_name(name)?;
    write_template(dir, TEMPLATE, &[("name", name)])?;
    write_sdk(dir)
}

/// Builds the project in `dir` into `out` (see the module comment for the steps).
pub fn build(dir: &Path, out: &Path, tools: &Toolchains) -> Result<PathBuf, BuildError> {
    for tool in ["node", "npm"] {
        if !has_tool(tool) {
            return Err(missing(tool));
        }
    }
    let manifest = read_manifest(dir)?;
    let entry = entry(dir, &manifest)?;
    let toolchain = install_toolchain(tools)?;

    if has_dependencies(&manifest) {
        let (step, args): (&str, &[&str]) = if dir.join("package-lock.json").is_file() {
            ("npm ci", &["ci", "--no-audit", "--no-fund"])
        } else {
            ("npm install", &["install", "--no-audit", "--no-fund"])
        };
        run_step(step, dir, npm().args(args))?;
    }
    write_sdk(dir)?;

    if dir.join("tsconfig.json").is_file() {
        let tsc = toolchain.join("node_modules/typescript/bin/tsc");
        run_step(
            "type-checking (tsc)",
            dir,
            Command::new("node")
                .arg(tsc)
                .args(["-p", "tsconfig.json", "--noEmit", "--pretty", "false"]),
        )?;
    }

    let build_dir = dir.join(BUILD_DIR);
    let wit_dir = build_dir.join("wit");
    std::fs::create_dir_all(&wit_dir).map_err(BuildError::io(&wit_dir))?;
    let wit = wit_dir.join("reconciler.wit");
    std::fs::write(&wit, WIT).map_err(BuildError::io(&wit))?;
    let bundle = build_dir.join("plugin.js");
    run_step(
        "bundling (esbuild)",
        dir,
        Command::new("node")
            .arg(toolchain.join("node_modules/esbuild/bin/esbuild"))
            .arg(&entry)
            .args([
                "--bundle",
                "--format=esm",
                "--platform=neutral",
                "--main-fields=module,main",
                "--target=es2022",
                "--external:wasmop:*",
                "--log-level=warning",
            ])
            .arg(format!("--outfile={}", bundle.display())),
    )?;
    run_step(
        "componentize-js",
        dir,
        Command::new("node")
            .arg(toolchain.join("node_modules/@bytecodealliance/componentize-js/src/cli.js"))
            .arg(&bundle)
            .arg("--wit")
            .arg(&wit_dir)
            .args([
                "--world-name",
                "reconciler",
                "--disable",
                "http",
                "fetch-event",
                "--out",
            ])
            .arg(out),
    )?;
    Ok(out.to_path_buf())
}

/// npm, quiet about its own updates. Its download cache stays the user's (`~/.npm`): a toolchain
/// installed again, e.g. into a fresh `target/` on CI, reads it instead of the registry.
fn npm() -> Command {
    let mut cmd = Command::new("npm");
    cmd.env("npm_config_update_notifier", "false");
    cmd
}

/// The toolchain's directory, installed with `npm ci` from the pinned lockfile if it is not there
/// yet. It is installed beside its final place and renamed into it, so that an interrupted install
/// is never taken for a complete one (and two builds at once do not see each other's half).
fn install_toolchain(tools: &Toolchains) -> Result<PathBuf, BuildError> {
    let dir = tools.dir(TOOLCHAIN.0, TOOLCHAIN.1);
    if dir
        .join("node_modules/@bytecodealliance/componentize-js/src/cli.js")
        .is_file()
    {
        return Ok(dir);
    }
    std::fs::create_dir_all(&tools.root).map_err(BuildError::io(&tools.root))?;
    let staging = tools
        .root
        .join(format!(".{}-{}.{}", TOOLCHAIN.0, TOOLCHAIN.1, std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(BuildError::io(&staging))?;
    for (file, text) in [
        ("package.json", TOOLCHAIN_PACKAGE),
        ("package-lock.json", TOOLCHAIN_LOCK),
    ] {
        let path = staging.join(file);
        std::fs::write(&path, text).map_err(BuildError::io(&path))?;
    }
    // No install scripts: esbuild's only checks its binary, which comes as its own package.
    let installed = run_step(
        "installing componentize-js, TypeScript and esbuild (npm ci)",
        &staging,
        npm().args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"]),
    );
    if let Err(e) = installed {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if let Err(e) = std::fs::rename(&staging, &dir) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another build finished the same install first.
        if !dir.is_dir() {
            return Err(BuildError::Io { path: dir, source: e });
        }
    }
    Ok(dir)
}

fn read_manifest(dir: &Path) -> Result<serde_json::Value, BuildError> {
    let path = dir.join("package.json");
    let text = std::fs::read_to_string(&path).map_err(BuildError::io(&path))?;
    serde_json::from_str(&text).map_err(|e| BuildError::Project {
        what: "package.json",
        path: path.clone(),
        reason: format!("not JSON: {e}"),
    })
}

/// Whether the project declares npm packages of its own to install.
fn has_dependencies(manifest: &serde_json::Value) -> bool {
    ["dependencies", "devDependencies"].iter().any(|field| {
        manifest
            .get(field)
            .and_then(serde_json::Value::as_object)
            .is_some_and(|deps| deps.keys().any(|k| k != "@wasmop/sdk"))
    })
}

/// The module that exports `metadata`, `reconcile` and `map`: `main` of `package.json`, else the
/// first of `src/plugin.ts`, `src/plugin.js`, `src/index.ts`, `src/index.js`.
fn entry(dir: &Path, manifest: &serde_json::Value) -> Result<PathBuf, BuildError> {
    if let Some(main) = manifest.get("main").and_then(serde_json::Value::as_str) {
        let path = dir.join(main);
        if !path.is_file() {
            return Err(BuildError::Project {
                what: "the entry module",
                path: dir.join("package.json"),
                reason: format!("`main` names {main}, which does not exist"),
            });
        }
        return Ok(path);
    }
    ["src/plugin.ts", "src/plugin.js", "src/index.ts", "src/index.js"]
        .iter()
        .map(|p| dir.join(p))
        .find(|p| p.is_file())
        .ok_or_else(|| BuildError::Project {
            what: "the entry module",
            path: dir.to_path_buf(),
            reason:
                "no `main` in package.json and no src/plugin.ts, src/plugin.js, src/index.ts or src/index.js"
                    .into(),
        })
}

/// Writes the embedded SDK into `dir/node_modules/@wasmop/sdk`, replacing what was there.
fn write_sdk(dir: &Path) -> Result<(), BuildError> {
    let sdk = dir.join("node_modules/@wasmop/sdk");
    if sdk.exists() {
        std::fs::remove_dir_all(&sdk).map_err(BuildError::io(&sdk))?;
    }
    for (rel, text) in SDK {
        let path = sdk.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        }
        std::fs::write(&path, text).map_err(BuildError::io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_toolchain_directory_names_the_pinned_versions() {
        let package: serde_json::Value = serde_json::from_str(TOOLCHAIN_PACKAGE).unwrap();
        let deps = package["devDependencies"].as_object().unwrap();
        let mut named: Vec<String> = deps
            .iter()
            .map(|(k, v)| format!("{}-{}", k.rsplit('/').next().unwrap(), v.as_str().unwrap()))
            .collect();
        named.sort();
        assert_eq!(named.join("_"), TOOLCHAIN.1);
        let lock: serde_json::Value = serde_json::from_str(TOOLCHAIN_LOCK).unwrap();
        assert_eq!(
            lock["packages"][""]["devDependencies"],
            package["devDependencies"]
        );
    }

    #[test]
    fn every_sdk_source_is_embedded() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk/js/src");
        let mut on_disk: Vec<String> = std::fs::read_dir(&src)
            .unwrap()
            .map(|e| format!("src/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = SDK
            .iter()
            .filter(|(p, _)| p.starts_with("src/"))
            .map(|(p, _)| p.to_string())
            .collect();
        assert_eq!(embedded, on_disk);
    }

    /// The SDK's hand-written contract types (`src/wit.ts`) name every record field (camelCased,
    /// as componentize-js binds them) and every enum and variant case of the WIT it is built
    /// against: a field added to the contract without the SDK following fails here.
    #[test]
    fn the_sdk_types_follow_the_wit() {
        let types = SDK.iter().find(|(p, _)| *p == "src/wit.ts").unwrap().1;
        let camel = |name: &str| {
            let mut out = String::new();
            let mut upper = false;
            for c in name.trim_start_matches('%').chars() {
                if c == '-' {
                    upper = true;
                } else if upper {
                    out.extend(c.to_uppercase());
                    upper = false;
                } else {
                    out.push(c);
                }
            }
            out
        };
        let (mut fields, mut cases) = (0, 0);
        let mut missing = Vec::new();
        let mut in_types = false;
        for line in WIT.lines().map(str::trim) {
            if line.starts_with("interface types") {
                in_types = true;
            } else if line.starts_with("interface ") || line.starts_with("world ") {
                in_types = false;
            }
            if !in_types || line.starts_with("//") {
                continue;
            }
            if let Some((name, ty)) = line.split_once(": ")
                && !ty.starts_with("func")
            {
                fields += 1;
                let field = camel(name);
                if !types.contains(&format!("{field}:")) && !types.contains(&format!("{field}?:")) {
                    missing.push(format!("field {name} ({field})"));
                }
            } else if let Some(case) = line.strip_suffix(',').map(|c| c.split('(').next().unwrap_or(c))
                && !case.is_empty()
                && case.chars().all(|c| c.is_ascii_lowercase() || c == '-')
            {
                cases += 1;
                if !types.contains(&format!("\"{case}\"")) {
                    missing.push(format!("case {case}"));
                }
            }
        }
        assert!(
            fields > 40 && cases > 10,
            "{fields} fields, {cases} cases read from the WIT"
        );
        assert!(missing.is_empty(), "src/wit.ts lacks: {missing:?}");
    }

    #[test]
    fn the_entry_is_main_or_a_conventional_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = entry(dir.path(), &serde_json::json!({})).unwrap_err().to_string();
        assert!(err.contains("src/plugin.ts"), "{err}");
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/index.js"), "").unwrap();
        assert_eq!(
            entry(dir.path(), &serde_json::json!({})).unwrap(),
            dir.path().join("src/index.js")
        );
        std::fs::write(dir.path().join("src/plugin.ts"), "").unwrap();
        assert_eq!(
            entry(dir.path(), &serde_json::json!({})).unwrap(),
            dir.path().join("src/plugin.ts")
        );
        let err = entry(dir.path(), &serde_json::json!({"main": "lib/x.js"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("lib/x.js"), "{err}");
        assert!(!has_dependencies(
            &serde_json::json!({"dependencies": {"@wasmop/sdk": "*"}})
        ));
        assert!(has_dependencies(
            &serde_json::json!({"devDependencies": {"yaml": "2.0.0"}})
        ));
    }

    #[test]
    fn new_writes_a_project_with_the_sdk() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("greeter");
        new(&project, "greeter").unwrap();
        let package = std::fs::read_to_string(project.join("package.json")).unwrap();
        assert!(package.contains("\"name\": \"greeter\""), "{package}");
        let plugin = std::fs::read_to_string(project.join("src/plugin.ts")).unwrap();
        assert!(plugin.contains("new Metadata(\"greeter\""), "{plugin}");
        assert!(project.join("node_modules/@wasmop/sdk/src/index.ts").is_file());
        assert!(project.join("tests/greet.snapshot.yaml").is_file());
        assert!(matches!(
            new(&dir.path().join("x"), "Bad_Name"),
            Err(BuildError::InvalidName { .. })
        ));
    }
}

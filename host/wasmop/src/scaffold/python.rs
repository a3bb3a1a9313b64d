//! Python plugin projects: a `pyproject.toml` naming the plugin class (`[tool.wasmop] plugin =
//! "module:Class"`), built with componentize-py (pinned, installed with pip into the toolchain
//! cache). The Python SDK (`guest-sdk/python/wasmop_sdk`) and the WIT are embedded in this binary
//! and written next to the toolchain, so a project needs nothing but its own sources; a project
//! that carries its own `wasmop_sdk/` uses that instead.

use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{BuildError, Toolchains, run_step, validate_name, write_template};

const LANG: &str = "Python";

/// The componentize-py release plugins are built with.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The world componentize-py builds.
const WORLD: &str = "wasmop:reconciler/reconciler@0.2.0";

/// The contract, as plugins see it.
const WIT: &str = include_str!("../../../../wit/reconciler.wit");

/// The Python SDK's modules, embedded.
const SDK: &[(&str, &str)] = &[
    (
        "__init__.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/__init__.py"),
    ),
    (
        "_component.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/_component.py"),
    ),
    (
        "desired.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/desired.py"),
    ),
    (
        "errors.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/errors.py"),
    ),
    (
        "host.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/host.py"),
    ),
    (
        "metadata.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/metadata.py"),
    ),
    (
        "objects.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/objects.py"),
    ),
    (
        "plugin.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/plugin.py"),
    ),
    (
        "snapshot.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/snapshot.py"),
    ),
    (
        "testing.py",
        include_str!("../../../../guest-sdk/python/wasmop_sdk/testing.py"),
    ),
];

/// The template, embedded (`host/wasmop/templates/python/`).
const TEMPLATE: &[(&str, &str)] = &[
    (
        "pyproject.toml",
        include_str!("../../templates/python/pyproject.toml"),
    ),
    (".gitignore", include_str!("../../templates/python/gitignore")),
    ("plugin.py", include_str!("../../templates/python/plugin.py")),
];

/// Where a build stages its entry module and the project's dependencies, inside the project.
const STAGING: &str = ".wasmop-build";

/// `wasmop new --lang python`.
pub fn new(dir: &Path, name: &str) -> Result<(), BuildError> {
    validate_name(name)?;
    write_template(dir, TEMPLATE, &[("name", name)])
}

/// What `pyproject.toml` says about the build.
#[derive(Debug, PartialEq, Eq)]
struct Project {
    /// The module and the `Plugin` subclass in it.
    module: String,
    class: String,
    /// `[project] dependencies`, installed with pip into the build (pure-Python packages only:
    /// there is no native code in a component).
    dependencies: Vec<String>,
}

fn read_project(dir: &Path) -> Result<Project, BuildError> {
    let path = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&path).map_err(BuildError::io(&path))?;
    let bad = |reason: String| BuildError::Project {
        what: "pyproject.toml",
        path: path.clone(),
        reason,
    };
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| bad(e.to_string()))?;
    let plugin = doc
        .get("tool")
        .and_then(|t| t.get("wasmop"))
        .and_then(|w| w.get("plugin"))
        .and_then(|p| p.as_str())
        .ok_or_else(|| {
            bad("no [tool.wasmop] plugin = \"module:Class\" (the Plugin subclass to export)".into())
        })?;
    let (module, class) = plugin
        .split_once(':')
        .filter(|(m, c)| !m.is_empty() && !c.is_empty())
        .ok_or_else(|| {
            bad(format!(
                "[tool.wasmop] plugin = {plugin:?} is not \"module:Class\""
            ))
        })?;
    let dependencies = doc
        .get("project")
        .and_then(|p| p.get("dependencies"))
        .and_then(|d| d.as_array())
        .map(|a| a.iter().filter_map(|d| d.as_str().map(String::from)).collect())
        .unwrap_or_default();
    Ok(Project {
        module: module.to_string(),
        class: class.to_string(),
        dependencies,
    })
}

/// Writes `files` into `root/<name>-<hash of the contents>/sub` once; returns that directory.
fn materialize(root: &Path, name: &str, sub: &str, files: &[(&str, &str)]) -> Result<PathBuf, BuildError> {
    let mut hash = Sha256::new();
    for (file, text) in files {
        hash.update(file.as_bytes());
        hash.update([0]);
        hash.update(text.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let dir = root.join(format!("{name}-{short}"));
    if dir.join(".complete").is_file() {
        return Ok(dir);
    }
    // Written aside and renamed into place: a concurrent build never reads a half-written file.
    let staging = root.join(format!(".{name}-{short}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    for (file, text) in files {
        let path = staging.join(sub).join(file);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        }
        std::fs::write(&path, text).map_err(BuildError::io(&path))?;
    }
    let done = staging.join(".complete");
    std::fs::write(&done, "").map_err(BuildError::io(&done))?;
    if let Err(source) = std::fs::rename(&staging, &dir) {
        let _ = std::fs::remove_dir_all(&staging);
        // Another build put it there first.
        if !dir.join(".complete").is_file() {
            return Err(BuildError::Io { path: dir, source });
        }
    }
    Ok(dir)
}

fn python() -> Result<&'static str, BuildError> {
    if super::has_tool("python3") {
        return Ok("python3");
    }
    Err(BuildError::MissingTool {
        tool: "python3".into(),
        lang: LANG,
        hint: "install Python 3.10 or later with pip (e.g. `apt-get install python3 python3-pip`)".into(),
    })
}

/// componentize-py's package directory in the toolchain cache, installed with pip on first use
/// (into a private directory, then renamed into place, so concurrent builds do not see half an
/// installation).
fn componentize_py(tools: &Toolchains) -> Result<PathBuf, BuildError> {
    let dir = tools.dir("componentize-py", COMPONENTIZE_PY);
    let site = dir.join("site");
    if site.join("componentize_py").is_dir() {
        return Ok(site);
    }
    let python = python()?;
    std::fs::create_dir_all(&tools.root).map_err(BuildError::io(&tools.root))?;
    let staging = tools
        .root
        .join(format!(".componentize-py-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let spec = format!("componentize-py=={COMPONENTIZE_PY}");
    let pip = Command::new(python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
        ])
        .arg(staging.join("site"))
        .arg(&spec)
        .output();
    match pip {
        Ok(out) if out.status.success() => {}
        Ok(out) => {
            let _ = std::fs::remove_dir_all(&staging);
            let output = String::from_utf8_lossy(&out.stderr).into_owned();
            if output.contains("No module named pip") {
                return Err(BuildError::MissingTool {
                    tool: "pip".into(),
                    lang: LANG,
                    hint: "install pip for python3 (e.g. `apt-get install python3-pip`)".into(),
                });
            }
            return Err(BuildError::Step {
                step: format!("pip install {spec}"),
                dir: tools.root.clone(),
                output,
            });
        }
        Err(e) => {
            return Err(BuildError::MissingTool {
                tool: "python3".into(),
                lang: LANG,
                hint: format!("cannot run it: {e}"),
            });
        }
    }
    if std::fs::rename(&staging, &dir).is_err() {
        // Another build installed it meanwhile.
        let _ = std::fs::remove_dir_all(&staging);
    }
    if site.join("componentize_py").is_dir() {
        Ok(site)
    } else {
        Err(BuildError::Step {
            step: format!("pip install {spec}"),
            dir: tools.root.clone(),
            output: format!("{} has no componentize_py package", site.display()),
        })
    }
}

/// Builds the project: componentize-py on a generated entry module that exports the plugin class,
/// with the project, the SDK and any dependencies on the module path. componentize-py
/// pre-initialises the component: the modules are imported and the plugin instantiated at build
/// time, so each reconcile starts from that snapshot.
pub fn build(dir: &Path, out: &Path, tools: &Toolchains) -> Result<PathBuf, BuildError> {
    let project = read_project(dir)?;
    let site = componentize_py(tools)?;
    let python = python()?;
    let wit = materialize(&tools.root, "wit", "wit", &[("reconciler.wit", WIT)])?.join("wit");
    let sdk = materialize(&tools.root, "wasmop-sdk-python", "wasmop_sdk", SDK)?;
    let staging = dir.join(STAGING);
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(BuildError::io(&staging))?;
    let entry = staging.join("wasmop_entry.py");
    std::fs::write(
        &entry,
        format!(
            "# Generated by `wasmop build`: the component's exports are {module}.{class}.\n\
             from wasmop_sdk._component import world\n\
             from {module} import {class}\n\n\
             WitWorld = world({class})\n",
            module = project.module,
            class = project.class
        ),
    )
    .map_err(BuildError::io(&entry))?;
    let mut paths = vec![staging.clone(), dir.to_path_buf()];
    if !project.dependencies.is_empty() {
        let deps = staging.join("deps");
        run_step(
            "pip install the project's dependencies",
            dir,
            Command::new(python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "--no-compile",
                ])
                .args(["--only-binary", ":all:", "--target"])
                .arg(&deps)
                .args(&project.dependencies),
        )?;
        paths.push(deps);
    }
    paths.push(sdk);
    let mut cmd = Command::new(python);
    cmd.env("PYTHONPATH", &site)
        .args([
            "-c",
            "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())",
        ])
        .arg("-d")
        .arg(&wit)
        .args(["-w", WORLD, "componentize", "wasmop_entry"]);
    for p in &paths {
        cmd.arg("-p").arg(p);
    }
    cmd.arg("-o").arg(out);
    run_step(&format!("componentize-py {COMPONENTIZE_PY}"), dir, &mut cmd)?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_project_names_its_plugin_class() {
        let dir = tempfile::tempdir().unwrap();
        let write = |text: &str| std::fs::write(dir.path().join("pyproject.toml"), text).unwrap();
        write(
            "[project]\nname = \"x\"\ndependencies = [\"attrs==23.1\"]\n[tool.wasmop]\nplugin = \"my_mod:Guard\"\n",
        );
        assert_eq!(
            read_project(dir.path()).unwrap(),
            Project {
                module: "my_mod".into(),
                class: "Guard".into(),
                dependencies: vec!["attrs==23.1".into()],
            }
        );
        write("[project]\nname = \"x\"\n");
        let err = read_project(dir.path()).unwrap_err().to_string();
        assert!(err.contains("[tool.wasmop]"), "{err}");
        write("[tool.wasmop]\nplugin = \"Guard\"\n");
        let err = read_project(dir.path()).unwrap_err().to_string();
        assert!(err.contains("module:Class"), "{err}");
    }

    #[test]
    fn the_template_names_the_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("demo");
        new(&project, "demo").unwrap();
        let p = read_project(&project).unwrap();
        assert_eq!((p.module.as_str(), p.class.as_str()), ("plugin", "Greeter"));
        let source = std::fs::read_to_string(project.join("plugin.py")).unwrap();
        assert!(source.contains("\"demo\""), "{source}");
    }

    #[test]
    fn embedded_files_are_written_once_per_content() {
        let dir = tempfile::tempdir().unwrap();
        let a = materialize(dir.path(), "sdk", "pkg", &[("a.py", "1")]).unwrap();
        assert_eq!(std::fs::read_to_string(a.join("pkg/a.py")).unwrap(), "1");
        assert_eq!(
            materialize(dir.path(), "sdk", "pkg", &[("a.py", "1")]).unwrap(),
            a
        );
        assert_ne!(
            materialize(dir.path(), "sdk", "pkg", &[("a.py", "2")]).unwrap(),
            a
        );
    }
}

//! `wasmop new` and `wasmop build`: plugin projects in Rust, Python and JavaScript/TypeScript.
//!
//! `new` writes a project from a template embedded in the binary (`host/wasmop/templates/<lang>/`)
//! that builds and passes its own golden test out of the box; `build` detects the language from the
//! project's manifest and turns it into one `.wasm` component of the `wasmop:reconciler@0.2.0` world.
//! Language toolchains that are not system tools (componentize-py, componentize-js) are installed,
//! at pinned versions, into a cache directory ([`Toolchains`]) rather than globally.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, ValueEnum};

// `js.rs` is owned by the JavaScript/TypeScript helper.
pub mod js;
pub mod python;
pub mod rust;

/// A plugin project's language, detected from its manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    /// `Cargo.toml`: a cdylib built for `wasm32-wasip2`.
    Rust,
    /// `pyproject.toml`: built with componentize-py.
    Python,
    /// `package.json`: JavaScript or TypeScript, built with componentize-js.
    Js,
}

impl Lang {
    /// What error messages call the language.
    pub fn label(self) -> &'static str {
        match self {
            Lang::Rust => "Rust",
            Lang::Python => "Python",
            Lang::Js => "JavaScript/TypeScript",
        }
    }

    /// The language of the project in `dir`, from the manifest it has (checked in the order Rust,
    /// Python, JavaScript: a Python project may well carry a `package.json` for tooling, but not a
    /// `Cargo.toml`).
    pub fn detect(dir: &Path) -> Result<Lang, BuildError> {
        for (file, lang) in [
            ("Cargo.toml", Lang::Rust),
            ("pyproject.toml", Lang::Python),
            ("package.json", Lang::Js),
        ] {
            if dir.join(file).is_file() {
                return Ok(lang);
            }
        }
        Err(BuildError::NoProject {
            dir: dir.to_path_buf(),
        })
    }
}

/// Where language toolchains are installed (one subdirectory per tool and pinned version), so that
/// they are downloaded once per machine (or once per CI cache).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchains {
    pub root: PathBuf,
}

impl Toolchains {
    pub fn new(root: impl Into<PathBuf>) -> Toolchains {
        Toolchains { root: root.into() }
    }

    /// `$XDG_CACHE_HOME/wasmop/toolchains`, else `~/.cache/wasmop/toolchains`, else one in the
    /// system temporary directory.
    pub fn default_root() -> PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".cache"))
            })
            .unwrap_or_else(std::env::temp_dir);
        cache.join("wasmop").join("toolchains")
    }

    /// The directory of one tool at one version (not created).
    pub fn dir(&self, tool: &str, version: &str) -> PathBuf {
        self.root.join(format!("{tool}-{version}"))
    }
}

/// Why `wasmop new` or `wasmop build` failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{tool} is required to build {lang} plugins: {hint}")]
    MissingTool {
        tool: String,
        lang: &'static str,
        hint: String,
    },
    #[error("{step} failed in {}:\n{output}", dir.display())]
    Step {
        step: String,
        dir: PathBuf,
        output: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{} is not a plugin project: it has no Cargo.toml (Rust), pyproject.toml (Python) or \
         package.json (JavaScript/TypeScript)",
        dir.display()
    )]
    NoProject { dir: PathBuf },
    #[error("{} already exists and is not empty", dir.display())]
    Exists { dir: PathBuf },
    #[error("invalid plugin name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("{what} in {}: {reason}", path.display())]
    Project {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

impl BuildError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
        move |source| BuildError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `wasmop new`.
#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// The plugin's name (lowercase letters, digits and `-`); the project is created in a
    /// directory of that name.
    #[arg(env = "WASMOP_NEW_NAME")]
    pub name: String,
    /// The language of the project.
    #[arg(long, env = "WASMOP_NEW_LANG", value_enum, default_value = "rust")]
    pub lang: Lang,
    /// Create the project in this directory instead of `./NAME`.
    #[arg(long, env = "WASMOP_NEW_DIR")]
    pub dir: Option<PathBuf>,
    /// Rust only: the wasmop Rust SDK (`guest-sdk/` of a wasmop checkout) the project depends on by
    /// path; by default the one next to the sources this wasmop was built from, when they are still
    /// there.
    #[arg(long, env = "WASMOP_SDK")]
    pub sdk: Option<PathBuf>,
}

/// `wasmop build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// The project directory (with a Cargo.toml, pyproject.toml or package.json).
    #[arg(env = "WASMOP_BUILD_DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Where to write the component (default: `DIR/<directory name>.wasm`).
    #[arg(short, long, env = "WASMOP_BUILD_OUT")]
    pub out: Option<PathBuf>,
    /// Where language toolchains (componentize-py, componentize-js) are installed (default:
    /// `~/.cache/wasmop/toolchains`).
    #[arg(long, env = "WASMOP_TOOLCHAINS")]
    pub toolchains: Option<PathBuf>,
}

/// `wasmop new`: creates the project and prints how to build and test it.
pub fn new_command(args: NewArgs) -> Result<(), BuildError> {
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    match args.lang {
        Lang::Rust => rust::new_with_sdk(&dir, &args.name, args.sdk.as_deref())?,
        lang => new(lang, &dir, &args.name)?,
    }
    println!(
        "created the {} plugin {} in {}",
        args.lang.label(),
        args.name,
        dir.display()
    );
    println!("build it:  wasmop build {}", dir.display());
    Ok(())
}

/// `wasmop build`: builds the component and prints its path.
pub fn build_command(args: BuildArgs) -> Result<(), BuildError> {
    let tools = Toolchains::new(args.toolchains.clone().unwrap_or_else(Toolchains::default_root));
    let out = build(&args.dir, args.out.as_deref(), &tools)?;
    println!("{}", out.display());
    Ok(())
}

/// Creates a project of `lang` named `name` in `dir` (which must not exist or be empty).
pub fn new(lang: Lang, dir: &Path, name: &str) -> Result<(), BuildError> {
    match lang {
        Lang::Rust => rust::new(dir, name),
        Lang::Python => python::new(dir, name),
        Lang::Js => js::new(dir, name),
    }
}

/// Builds the project in `dir` into `out` (default `dir/<directory name>.wasm`); returns the path
/// written.
pub fn build(dir: &Path, out: Option<&Path>, tools: &Toolchains) -> Result<PathBuf, BuildError> {
    let lang = Lang::detect(dir)?;
    let dir = std::path::absolute(dir).map_err(BuildError::io(dir))?;
    // Build steps run in the project directory: every path they get is absolute.
    let tools = &Toolchains::new(std::path::absolute(&tools.root).map_err(BuildError::io(&tools.root))?);
    let out = match out {
        Some(out) => std::path::absolute(out).map_err(BuildError::io(out))?,
        None => dir.join(format!("{}.wasm", dir_name(&dir))),
    };
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
    }
    match lang {
        Lang::Rust => rust::build(&dir, &out, tools),
        Lang::Python => python::build(&dir, &out, tools),
        Lang::Js => js::build(&dir, &out, tools),
    }
}

/// The last component of `dir` (`plugin` for a root or an unnamed path).
fn dir_name(dir: &Path) -> String {
    dir.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}

/// A plugin name is used as a package name in every language and as a Kubernetes name: lowercase
/// letters, digits and `-`, starting with a letter, at most 63 characters.
pub fn validate_name(name: &str) -> Result<(), BuildError> {
    let invalid = |reason| {
        Err(BuildError::InvalidName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() || name.len() > 63 {
        return invalid("it must have 1 to 63 characters");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return invalid("it must start with a lowercase letter");
    }
    if name.ends_with('-') {
        return invalid("it must not end with `-`");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return invalid("only lowercase letters, digits and `-` are allowed");
    }
    Ok(())
}

/// The golden fixtures every new project starts with, whatever its language: the same plugin
/// (a ConfigMap greeter) answers the same snapshots (`host/wasmop/templates/rust/tests/`).
const FIXTURES: &[(&str, &str)] = &[
    (
        "tests/greet.snapshot.yaml",
        include_str!("../../templates/rust/tests/greet.snapshot.yaml"),
    ),
    (
        "tests/greet.expected.yaml",
        include_str!("../../templates/rust/tests/greet.expected.yaml"),
    ),
    (
        "tests/resync.snapshot.yaml",
        include_str!("../../templates/rust/tests/resync.snapshot.yaml"),
    ),
    (
        "tests/resync.expected.yaml",
        include_str!("../../templates/rust/tests/resync.expected.yaml"),
    ),
];

/// Writes a template's files and the shared golden fixtures into a new project directory: `dir`
/// must not exist or be empty; every `{{key}}` in the contents is replaced by its value.
pub fn write_template(dir: &Path, files: &[(&str, &str)], vars: &[(&str, &str)]) -> Result<(), BuildError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(BuildError::io(dir))?;
        if entries.next().is_some() {
            return Err(BuildError::Exists {
                dir: dir.to_path_buf(),
            });
        }
    }
    for (rel, contents) in files.iter().chain(FIXTURES) {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        }
        let mut text = contents.to_string();
        for (key, value) in vars {
            text = text.replace(&format!("{{{{{key}}}}}"), value);
        }
        std::fs::write(&path, text).map_err(BuildError::io(&path))?;
    }
    Ok(())
}

/// Runs one build step in `dir`, returning its standard output; a failure (or a command that cannot
/// start) is a [`BuildError::Step`] with everything it printed.
pub fn run_step(step: &str, dir: &Path, cmd: &mut Command) -> Result<String, BuildError> {
    tracing::info!(step, dir = %dir.display(), "build step");
    let output = cmd.current_dir(dir).output().map_err(|e| BuildError::Step {
        step: step.to_string(),
        dir: dir.to_path_buf(),
        output: format!("cannot run {:?}: {e}", cmd.get_program()),
    })?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(BuildError::Step {
            step: step.to_string(),
            dir: dir.to_path_buf(),
            output: format!("{}{stdout}{stderr}", output.status),
        });
    }
    Ok(stdout)
}

/// Whether `tool` runs (`tool --version` succeeds).
pub fn has_tool(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_comes_from_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let err = Lang::detect(dir.path()).unwrap_err().to_string();
        assert!(err.contains("pyproject.toml"), "{err}");
        std::fs::write(dir.path().join("package.json"), "{}").unwrap();
        assert_eq!(Lang::detect(dir.path()).unwrap(), Lang::Js);
        std::fs::write(dir.path().join("pyproject.toml"), "").unwrap();
        assert_eq!(Lang::detect(dir.path()).unwrap(), Lang::Python);
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(Lang::detect(dir.path()).unwrap(), Lang::Rust);
    }

    #[test]
    fn plugin_names_are_kubernetes_and_package_names() {
        for ok in ["a", "pdb-guard", "x2"] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "Pdb", "2x", "a_b", "a-", "a.b", &"a".repeat(64)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn templates_fill_in_and_refuse_a_non_empty_directory() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        write_template(&project, &[("src/a.txt", "name={{name}}")], &[("name", "demo")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(project.join("src/a.txt")).unwrap(),
            "name=demo"
        );
        let err = write_template(&project, &[("b", "")], &[]).unwrap_err();
        assert!(matches!(err, BuildError::Exists { .. }), "{err}");
    }

    #[test]
    fn a_failed_step_shows_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let err = run_step(
            "the step",
            dir.path(),
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("the step failed") && err.contains("out") && err.contains("err"),
            "{err}"
        );
        assert!(has_tool("sh") || has_tool("cargo"));
        assert!(!has_tool("wasmop-no-such-tool"));
    }
}

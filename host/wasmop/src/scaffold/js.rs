//! JavaScript/TypeScript plugin projects. Placeholder until the JavaScript/TypeScript helper, who replaces this file lands the real build: `new` and `build`
//! answer that JavaScript/TypeScript projects are not supported by this build of wasmop yet.

use std::path::{Path, PathBuf};

use super::{BuildError, Toolchains};

fn unsupported(path: &Path) -> BuildError {
    BuildError::Project {
        what: "JavaScript/TypeScript plugins",
        path: path.to_path_buf(),
        reason: "not supported by this build of wasmop yet".into(),
    }
}

pub fn new(dir: &Path, _name: &str) -> Result<(), BuildError> {
    Err(unsupported(dir))
}

pub fn build(dir: &Path, _out: &Path, _tools: &Toolchains) -> Result<PathBuf, BuildError> {
    Err(unsupported(dir))
}

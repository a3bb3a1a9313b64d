//! Python plugin projects. Placeholder until helper E (in progress) lands the real build: `new` and `build`
//! answer that Python projects are not supported by this build of wasmop yet.

use std::path::{Path, PathBuf};

use super::{BuildError, Toolchains};

fn unsupported(path: &Path) -> BuildError {
    BuildError::Project {
        what: "Python plugins",
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

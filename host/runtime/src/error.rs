//! Why a plugin could not be loaded. Every message starts with the file it is about.

use wasmop_contract::{MetadataError, ReconcileFailure};

/// The engine could not be set up (the pooling allocator could not reserve its address space, ...).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot set up the WebAssembly engine: {0}")]
pub struct RuntimeError(pub(crate) String);

/// Why a plugin file is unusable.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read the file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not a WebAssembly file (it does not start with the `\\0asm` header)")]
    NotWasm { file: String },
    #[error(
        "{file}: a core WebAssembly module, not a component: build the plugin for the \
         wasm32-wasip2 target (or wrap it with `wasm-tools component new`)"
    )]
    NotComponent { file: String },
    #[error("{file}: the component does not compile: {reason}")]
    Compile { file: String, reason: String },
    #[error(
        "{file}: the component is {size} bytes, over the cap of {cap} bytes on component files; it was not compiled"
    )]
    TooLarge { file: String, size: u64, cap: u64 },
    /// A compile in a child process was stopped at a limit (time or memory): the component is
    /// refused, never compiled in the host's own process instead.
    #[error("{file}: compiling was stopped and the component refused: {limit}")]
    CompileLimit { file: String, limit: String },
    /// The child process that compiles could not run, or failed for a reason other than the
    /// component: the component is refused, not compiled in the host's own process, where
    /// nothing would bound the time and memory it takes.
    #[error("{file}: not compiled (the host compiles only in a child process, within limits): {reason}")]
    Compiler { file: String, reason: String },
    #[error("{file}: not a wasmop:reconciler@0.2.0 or @0.1.0 plugin (wrong world): {reason}")]
    WrongWorld { file: String, reason: String },
    #[error("{file}: calling the plugin's metadata() failed: {failure}")]
    Metadata { file: String, failure: ReconcileFailure },
    #[error("{file}: invalid metadata: {source}")]
    InvalidMetadata {
        file: String,
        #[source]
        source: MetadataError,
    },
    #[error("{file}: {source}")]
    Runtime {
        file: String,
        #[source]
        source: RuntimeError,
    },
}

impl LoadError {
    /// The file (or name given to `load_bytes`) the error is about.
    pub fn file(&self) -> &str {
        match self {
            LoadError::Read { file, .. }
            | LoadError::NotWasm { file }
            | LoadError::NotComponent { file }
            | LoadError::Compile { file, .. }
            | LoadError::TooLarge { file, .. }
            | LoadError::CompileLimit { file, .. }
            | LoadError::Compiler { file, .. }
            | LoadError::WrongWorld { file, .. }
            | LoadError::Metadata { file, .. }
            | LoadError::InvalidMetadata { file, .. }
            | LoadError::Runtime { file, .. } => file,
        }
    }
}

/// Why a compile-cache directory was refused. Loading goes on without a cache: compiling every time
/// is slower, never unsafe.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{}: {what}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: refused as the compile cache: not a directory", path.display())]
    NotADirectory { path: std::path::PathBuf },
    #[error(
        "{}: refused as the compile cache: owned by uid {owner}, not by the user running wasmop \
         (uid {uid}); someone else could plant native code there. Use a directory of your own \
         (--cache-dir)",
        path.display()
    )]
    NotOwned {
        path: std::path::PathBuf,
        owner: u32,
        uid: u32,
    },
    #[error(
        "{}: refused as the compile cache: mode {mode:04o} lets other users write it (or read the \
         key); `chmod go-rwx` it or use another --cache-dir",
        path.display()
    )]
    TooOpen { path: std::path::PathBuf, mode: u32 },
    #[error(
        "{}: refused as the compile cache key: not a regular file of 32 bytes ({len} bytes); \
         remove the cache directory to start afresh",
        path.display()
    )]
    BadKey { path: std::path::PathBuf, len: u64 },
}

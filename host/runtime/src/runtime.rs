//! The engine, the linker, and loading: from bytes to a validated [`Plugin`].

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wasmop_contract::EmptyCache;
use wasmtime::component::Component;

use crate::bindings::{v0_1, v0_2};
use crate::cache::{ArtifactCache, CacheStats, Digest, Lookup, sha256};
use crate::compile::{ChildCompile, CompileLimits};
use crate::error::{CacheError, LoadError, RuntimeError};
use crate::plugin::{Outcome, Plugin, PluginLimits, World, bounded, classify};
use crate::pool::{Footprint, PluginEngine, Ticker};

/// How the engine is set up; one per process is usual ([`Runtime::shared`]).
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Instances of one plugin that can exist at once: each plugin gets its own pool of this many
    /// slots, each sized for its component ([`crate::pool`]); a call waits for a free one. A slot
    /// reserves (but does not commit) address space for the component's memories, 4 GiB each, and
    /// keeps the first pages of each memory resident between calls. 0: no pools (wasmtime's
    /// on-demand allocator maps each instance's memories when a call starts and unmaps them when it
    /// ends; calls are a little slower, nothing is reserved).
    pub instances_per_plugin: u32,
    /// How often the epoch advances: the granularity of deadlines, and how often a running guest
    /// yields to the async executor.
    pub epoch_tick: Duration,
    /// Where compiled plugins are kept on disk ([`ArtifactCache`]: a directory only this user can
    /// write, artifacts authenticated by an HMAC under a key kept there; anything else is ignored
    /// and rebuilt). `None` compiles every time; so does a directory that is refused (the reason is
    /// logged as an error and kept in [`Runtime::cache_error`]).
    pub cache_dir: Option<PathBuf>,
    /// The `wasmop` executable: a plugin that is not in the compile cache is compiled by a child
    /// process (`wasmop compile`, into the cache, or without one into a private scratch directory
    /// whose artifact is removed once loaded) within [`compile_limits`](Self::compile_limits), and
    /// loaded from the artifact it writes, so the memory compiling takes (well over 100 MB, which
    /// the allocator keeps once freed) goes back to the system when the child exits. A child
    /// stopped at a limit, or one that cannot run: the component is refused, never compiled in
    /// this process instead. `None` (a library user, the tests): compiled in this process,
    /// bounded by size only.
    pub compiler: Option<PathBuf>,
    /// How much compiling one plugin may take: the size of its file, and the time and memory of a
    /// compile in a child process.
    pub compile_limits: CompileLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            instances_per_plugin: 4,
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
            compiler: None,
            compile_limits: CompileLimits::default(),
        }
    }
}

/// The wasmtime engine and the linker every plugin is instantiated with. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    /// How every engine is configured, before its allocator is chosen.
    wasm: wasmtime::Config,
    /// The on-demand engine: compiles ahead of time (`wasmop compile`), and runs every plugin when
    /// there are no per-plugin pools.
    shared: Arc<PluginEngine>,
    instances_per_plugin: u32,
    ticker: Arc<Ticker>,
    /// [`Runtime::compatibility_key`], computed once.
    engine_key: Digest,
    cache: Option<ArtifactCache>,
    cache_error: Option<CacheError>,
    compiler: Option<PathBuf>,
    compile_limits: CompileLimits,
    /// Without a cache, where a child process compiles to: a private directory of this runtime's
    /// own, made on first use, removed with the runtime; or why it could not be made.
    scratch: std::sync::OnceLock<Result<(tempfile::TempDir, ArtifactCache), String>>,
    /// Plugins compiled by a child process so far.
    child_compiles: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime").finish_non_exhaustive()
    }
}

static SHARED: Mutex<Option<Runtime>> = Mutex::new(None);

impl Runtime {
    /// Sets up an engine and starts its epoch ticker (a thread that stops when the last clone of
    /// this runtime, and of every plugin loaded with it, is dropped).
    pub fn new(config: RuntimeConfig) -> Result<Runtime, RuntimeError> {
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            // Cranelift compiles a component's functions on every core (rayon).
            .parallel_compilation(true);
        // A refused cache directory does not stop the host: compiling every time costs start-up
        // time only, while refusing to start would let whoever planted the directory deny service.
        let (cache, cache_error) = match config.cache_dir.as_deref().map(ArtifactCache::open) {
            Some(Ok(cache)) => (Some(cache), None),
            Some(Err(e)) => {
                tracing::error!(error = %e, "compile cache refused: every plugin will be compiled on every load");
                (None, Some(e))
            }
            None => (None, None),
        };
        let shared = PluginEngine::on_demand(&wasm)?;
        // Pool settings are not part of it: every plugin's engine shares this key.
        let engine_key = compatibility_key_of(&shared.engine);
        let ticker = Ticker::start(config.epoch_tick)?;
        ticker.add(&shared.engine);

        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                wasm,
                shared: Arc::new(shared),
                instances_per_plugin: config.instances_per_plugin,
                ticker,
                engine_key,
                cache,
                cache_error,
                compiler: config.compiler,
                compile_limits: config.compile_limits,
                scratch: Default::default(),
                child_compiles: Default::default(),
            }),
        })
    }

    /// Compile-cache hits and misses so far (`None` without a cache): a load that adds a hit did
    /// not compile.
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.artifact_cache_stats()
            .map(|s| (s.hits as usize, s.misses as usize))
    }

    /// All the compile cache's counters, rejected artifacts included (`None` without a cache).
    pub fn artifact_cache_stats(&self) -> Option<CacheStats> {
        self.inner.cache.as_ref().map(ArtifactCache::stats)
    }

    #[cfg(test)]
    pub(crate) fn engine(&self) -> &wasmtime::Engine {
        &self.inner.shared.engine
    }

    /// Plugins compiled by a child process (see [`RuntimeConfig::compiler`]) so far.
    pub fn child_compiles(&self) -> u64 {
        self.inner
            .child_compiles
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The compile cache in use, if any.
    pub fn artifact_cache(&self) -> Option<&ArtifactCache> {
        self.inner.cache.as_ref()
    }

    /// Why the configured cache directory was refused, if it was.
    pub fn cache_error(&self) -> Option<&CacheError> {
        self.inner.cache_error.as_ref()
    }

    /// Where the artifact of a component with these bytes is (or would be) cached.
    pub fn artifact_path(&self, bytes: &[u8]) -> Option<PathBuf> {
        self.inner
            .cache
            .as_ref()
            .map(|c| c.artifact_path(&self.inner.engine_key, &sha256(bytes)))
    }

    /// The process-wide runtime with the default configuration, created on first use.
    pub fn shared() -> Result<Runtime, RuntimeError> {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rt) = &*shared {
            return Ok(rt.clone());
        }
        let rt = Runtime::new(RuntimeConfig::default())?;
        *shared = Some(rt.clone());
        Ok(rt)
    }

    /// Reads, compiles and checks a plugin file (blocking: compiling takes CPU seconds).
    pub fn load(&self, path: impl AsRef<Path>, limits: PluginLimits) -> Result<Plugin, LoadError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            file: file.clone(),
            source,
        })?;
        self.load_bytes(&file, &bytes, limits)
    }

    /// Like [`load`](Self::load) for bytes already in memory; `file` names them in errors and,
    /// until the plugin has told its name, in logs.
    pub fn load_bytes(&self, file: &str, bytes: &[u8], limits: PluginLimits) -> Result<Plugin, LoadError> {
        let compiled = self.compile(file, bytes)?;
        self.instantiate(compiled, limits)
    }

    /// Compiles a component to native code (or loads its verified artifact from the compile
    /// cache, and writes one after compiling), without checking it is a reconciler yet, for an
    /// engine whose instance pool is sized for it ([`RuntimeConfig::instances_per_plugin`]).
    pub fn compile(&self, file: &str, bytes: &[u8]) -> Result<CompiledPlugin, LoadError> {
        check_header(file, bytes)?;
        crate::compile::check_size(file, bytes, &self.inner.compile_limits)?;
        let footprint = match self.inner.instances_per_plugin {
            0 => None,
            _ => Footprint::of(bytes),
        };
        // No pools, or a binary that does not parse (compiling says why): the shared engine.
        let Some(footprint) = footprint else {
            return self.compile_on(self.inner.shared.clone(), file, bytes);
        };
        let compiled = self.compile_on(self.pooled(file, footprint)?, file, bytes)?;
        // wasmtime's own count is what instantiating will need; if the binary's sections said
        // less, size the pool again (compiling again is a cache hit when there is a cache).
        match compiled.component.resources_required() {
            Some(required) if footprint.covers(&required) => Ok(compiled),
            Some(required) => {
                let footprint = footprint.widened(&required);
                tracing::debug!(%file, ?footprint, "instance pool sized again from the compiled component");
                self.compile_on(self.pooled(file, footprint)?, file, bytes)
            }
            // It instantiates modules it imports: no pool can be sized ahead.
            None => self.compile_on(self.inner.shared.clone(), file, bytes),
        }
    }

    /// A new engine with a pool for a component of this footprint, ticked with the others.
    fn pooled(&self, file: &str, footprint: Footprint) -> Result<Arc<PluginEngine>, LoadError> {
        let engine = PluginEngine::pooled(&self.inner.wasm, footprint, self.inner.instances_per_plugin)
            .map_err(|source| LoadError::Runtime {
                file: file.to_string(),
                source,
            })?;
        self.inner.ticker.add(&engine.engine);
        Ok(Arc::new(engine))
    }

    fn compile_on(
        &self,
        engine: Arc<PluginEngine>,
        file: &str,
        bytes: &[u8],
    ) -> Result<CompiledPlugin, LoadError> {
        let cached = self.inner.cache.as_ref().map(|cache| (cache, sha256(bytes)));
        if let Some((cache, digest)) = &cached
            && let Lookup::Hit(component) = cache.lookup(&engine.engine, &self.inner.engine_key, digest)
        {
            return Ok(CompiledPlugin {
                file: file.to_string(),
                component,
                engine,
                from_cache: true,
            });
        }
        if let Some(exe) = &self.inner.compiler {
            return self.compile_in_child(exe, engine, file, bytes, cached);
        }
        let component = Component::new(&engine.engine, bytes).map_err(|e| LoadError::Compile {
            file: file.to_string(),
            reason: format!("{e:#}"),
        })?;
        if let Some((cache, digest)) = &cached {
            let stored = component
                .serialize()
                .map_err(|e| std::io::Error::other(format!("{e:#}")))
                .and_then(|payload| cache.store(&self.inner.engine_key, digest, &payload));
            if let Err(e) = stored {
                tracing::warn!(%file, dir = %cache.dir().display(), error = %e, "compile cache: cannot write the artifact");
            }
        }
        Ok(CompiledPlugin {
            file: file.to_string(),
            component,
            engine,
            from_cache: false,
        })
    }

    /// Compiles in a child process (see [`RuntimeConfig::compiler`]) and loads its artifact. With
    /// a cache, the child writes the artifact there; without one, to this runtime's scratch
    /// directory, whose artifact goes once loaded: a compile is bounded either way.
    fn compile_in_child(
        &self,
        exe: &Path,
        engine: Arc<PluginEngine>,
        file: &str,
        bytes: &[u8],
        cached: Option<(&ArtifactCache, Digest)>,
    ) -> Result<CompiledPlugin, LoadError> {
        let (cache, digest, scratch) = match cached {
            Some((cache, digest)) => (cache, digest, false),
            None => {
                let cache = self.scratch().map_err(|e| LoadError::Compiler {
                    file: file.to_string(),
                    reason: format!(
                        "no scratch directory for the compiler process (there is no compile cache): {e}"
                    ),
                })?;
                (cache, sha256(bytes), true)
            }
        };
        let failed = match crate::compile::in_child(exe, cache, file, bytes, &self.inner.compile_limits)? {
            ChildCompile::Done => None,
            ChildCompile::Failed(e) => Some(e),
        };
        let Some(component) = cache.take_compiled(&engine.engine, &self.inner.engine_key, &digest) else {
            return Err(failed.unwrap_or_else(|| LoadError::Compiler {
                file: file.to_string(),
                reason: format!(
                    "the compiler process {} left no usable artifact in {} (see the log)",
                    exe.display(),
                    cache.dir().display()
                ),
            }));
        };
        if scratch {
            // Mapped (or copied) already: the file is not needed any more.
            cache.remove(&self.inner.engine_key, &digest);
        }
        self.inner
            .child_compiles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(CompiledPlugin {
            file: file.to_string(),
            component,
            engine,
            from_cache: false,
        })
    }

    /// The scratch directory a child compiles to when there is no cache (made on first use).
    fn scratch(&self) -> Result<&ArtifactCache, &str> {
        self.inner
            .scratch
            .get_or_init(|| {
                let dir = tempfile::Builder::new()
                    .prefix("wasmop-compile-")
                    .tempdir()
                    .map_err(|e| format!("cannot make one in {}: {e}", std::env::temp_dir().display()))?;
                let cache = ArtifactCache::open(dir.path()).map_err(|e| e.to_string())?;
                Ok((dir, cache))
            })
            .as_ref()
            .map(|(_, cache)| cache)
            .map_err(String::as_str)
    }

    /// Compiles a component to the engine's artifact format, for an on-disk cache. See
    /// [`compatibility_key`](Self::compatibility_key).
    pub fn precompile(&self, file: &str, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        check_header(file, bytes)?;
        crate::compile::check_size(file, bytes, &self.inner.compile_limits)?;
        self.inner
            .shared
            .engine
            .precompile_component(bytes)
            .map_err(|e| LoadError::Compile {
                file: file.to_string(),
                reason: format!("{e:#}"),
            })
    }

    /// A SHA-256 of everything that makes compiled artifacts of this engine incompatible with
    /// another (wasmtime version, target, compiler settings): part of an artifact's cache key, with
    /// the hash of the component's bytes.
    pub fn compatibility_key(&self) -> Digest {
        self.inner.engine_key
    }

    /// Links a compiled component against the reconciler world (0.2, else 0.1), calls its
    /// `metadata` export once (with `limits`) and validates the answer.
    pub fn instantiate(&self, compiled: CompiledPlugin, limits: PluginLimits) -> Result<Plugin, LoadError> {
        let CompiledPlugin {
            file,
            component,
            engine,
            ..
        } = compiled;
        let wrong_world = |reason: String| LoadError::WrongWorld {
            file: file.clone(),
            reason,
        };
        let pre = engine
            .linker
            .instantiate_pre(&component)
            .map_err(|e| wrong_world(format!("{e:#}")))?;
        let world = match v0_2::ReconcilerPre::new(pre.clone()) {
            Ok(pre) => World::V0_2(pre),
            Err(e2) => match v0_1::ReconcilerPre::new(pre) {
                Ok(pre) => World::V0_1 {
                    pre,
                    finalizer_everywhere: false,
                },
                Err(e1) => {
                    return Err(wrong_world(format!(
                        "as {}: {e2:#}; as {}: {e1:#}",
                        v0_2::VERSION,
                        v0_1::VERSION
                    )));
                }
            },
        };

        let label: Arc<str> = Path::new(&file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| file.clone())
            .into();
        // The pool is new: a slot is free.
        let slot = engine.try_slot();
        let mut store = engine.store(label, Arc::new(EmptyCache), limits);
        let call = async {
            Ok(match &world {
                World::V0_2(pre) => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let m = instance.call_metadata(&mut store).await?;
                    (crate::convert::metadata_from_wit(m), false)
                }
                World::V0_1 { pre, .. } => {
                    let instance = pre.instantiate_async(&mut store).await?;
                    let m = instance.call_metadata(&mut store).await?;
                    crate::v0_1::metadata_from_wit(m)
                }
            })
        };
        // Loading is synchronous: drive the call here, inside a tokio context (the caller's, or
        // wasmtime-wasi's own) so that WASI host calls and the outer deadline have a timer.
        let outcome = wasmtime_wasi::runtime::with_ambient_tokio_runtime(|| {
            futures::executor::block_on(bounded(limits, call))
        });
        let failure = |failure| LoadError::Metadata {
            file: file.clone(),
            failure,
        };
        let (metadata, finalizer_everywhere) = match outcome {
            Outcome::Done(Ok(answer)) => answer,
            Outcome::Done(Err(e)) => return Err(failure(classify(e, store.data(), limits))),
            Outcome::Failed(f) => return Err(failure(f)),
        };
        drop(store);
        drop(slot);
        metadata.validate().map_err(|source| LoadError::InvalidMetadata {
            file: file.clone(),
            source,
        })?;
        let world = match world {
            World::V0_1 { pre, .. } => World::V0_1 {
                pre,
                finalizer_everywhere,
            },
            world => world,
        };
        Ok(Plugin::new(self.clone(), engine, file, metadata, world, limits))
    }
}

/// Distinguishes "not wasm" and "a core module" from other compile errors, before compiling.
fn check_header(file: &str, bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm { file: file.into() });
    }
    // Version (u16) and layer (u16): layer 0 is a core module, 1 a component.
    if bytes[6..8] == [0, 0] {
        return Err(LoadError::NotComponent { file: file.into() });
    }
    Ok(())
}

/// SHA-256 of wasmtime's compatibility hash of `engine`.
fn compatibility_key_of(engine: &wasmtime::Engine) -> Digest {
    let mut h = Sha256Hasher(ring::digest::Context::new(&ring::digest::SHA256));
    engine.precompile_compatibility_hash().hash(&mut h);
    h.0.finish().as_ref().try_into().expect("32 bytes")
}

/// Feeds wasmtime's engine-compatibility hash into SHA-256, for a key that is the same in every
/// process of this build (std's `DefaultHasher` promises no such thing).
struct Sha256Hasher(ring::digest::Context);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        unreachable!("only the SHA-256 of the hashed bytes is used")
    }
}

/// A component compiled by a [`Runtime`], not yet checked against the reconciler world.
pub struct CompiledPlugin {
    file: String,
    component: Component,
    /// The engine it was compiled for (its instance pool sized for it).
    engine: Arc<PluginEngine>,
    from_cache: bool,
}

impl std::fmt::Debug for CompiledPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledPlugin")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl CompiledPlugin {
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether it came from a verified artifact of the compile cache (nothing was compiled).
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest core module: magic, version 1, layer 0.
    pub(crate) const CORE_MODULE: &[u8] = b"\0asm\x01\0\0\0";
    /// The smallest component: magic, version 0x0d, layer 1. It exports nothing.
    pub(crate) const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn runtime() -> Runtime {
        Runtime::shared().unwrap()
    }

    #[test]
    fn headers_are_told_apart() {
        assert!(matches!(
            check_header("f", b"hello"),
            Err(LoadError::NotWasm { .. })
        ));
        assert!(matches!(check_header("f", b""), Err(LoadError::NotWasm { .. })));
        assert!(matches!(
            check_header("f", CORE_MODULE),
            Err(LoadError::NotComponent { .. })
        ));
        assert!(check_header("f", EMPTY_COMPONENT).is_ok());
    }

    #[test]
    fn every_load_error_names_the_file() {
        let rt = runtime();
        let err = rt
            .load_bytes("garbage.wasm", b"not wasm at all", PluginLimits::default())
            .unwrap_err();
        assert!(matches!(err, LoadError::NotWasm { .. }));
        assert!(
            err.to_string()
                .starts_with("garbage.wasm: not a WebAssembly file"),
            "{err}"
        );

        let err = rt
            .load_bytes("core.wasm", CORE_MODULE, PluginLimits::default())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("core.wasm: a core WebAssembly module"),
            "{err}"
        );

        let err = rt
            .load_bytes("empty.wasm", EMPTY_COMPONENT, PluginLimits::default())
            .unwrap_err();
        assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
        assert!(
            err.to_string().starts_with(
                "empty.wasm: not a wasmop:reconciler@0.2.0 or @0.1.0 plugin (wrong world): as 0.2.0: "
            ),
            "{err}"
        );

        let mut broken = EMPTY_COMPONENT.to_vec();
        broken.extend_from_slice(&[0xff, 0x01, 0x00]);
        let err = rt
            .load_bytes("broken.wasm", &broken, PluginLimits::default())
            .unwrap_err();
        assert!(matches!(err, LoadError::Compile { .. }), "{err}");
        assert_eq!(err.file(), "broken.wasm");

        let err = rt
            .load("/nonexistent/plugin.wasm", PluginLimits::default())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/plugin.wasm: cannot read"),
            "{err}"
        );
    }

    #[test]
    fn components_of_other_worlds_are_refused_with_the_reason() {
        let rt = runtime();
        let load = |name: &str, wat: &str| {
            let bytes = wat::parse_str(wat).expect("valid WAT");
            rt.load_bytes(name, &bytes, PluginLimits::default())
                .expect_err("not a reconciler")
        };
        // A component exporting something else (a `wasi:cli/run`-like function).
        let err = load(
            "command.wasm",
            r#"(component
                (core module $m (func (export "run") (result i32) i32.const 0))
                (core instance $i (instantiate $m))
                (func (export "run") (result u32) (canon lift (core func $i "run"))))"#,
        );
        assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
        assert!(err.to_string().contains("metadata"), "{err}");
        // A component importing what the host does not provide.
        let err = load(
            "imports.wasm",
            r#"(component (import "acme:thing/api@1.0.0" (instance (export "f" (func)))))"#,
        );
        assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
        assert!(err.to_string().starts_with("imports.wasm: "), "{err}");
        assert!(err.to_string().contains("acme:thing/api"), "{err}");
        // The right export names with the wrong types.
        let err = load(
            "types.wasm",
            r#"(component
                (core module $m (func (export "f") (result i32) i32.const 0))
                (core instance $i (instantiate $m))
                (func (export "metadata") (result u32) (canon lift (core func $i "f")))
                (func (export "reconcile") (result u32) (canon lift (core func $i "f"))))"#,
        );
        assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    }

    #[test]
    fn compiled_components_serialise() {
        let rt = runtime();
        assert!(!rt.precompile("empty.wasm", EMPTY_COMPONENT).unwrap().is_empty());
        assert_eq!(rt.compatibility_key(), rt.compatibility_key());
        // Another engine of the same configuration has the same key (it is not a random hash).
        let other = Runtime::new(RuntimeConfig {
            instances_per_plugin: 0,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert_eq!(other.compatibility_key(), rt.compatibility_key());
    }

    #[test]
    fn each_plugin_gets_a_pool_sized_for_it_sharing_the_artifacts_key() {
        let rt = runtime();
        let component = |memories: usize| {
            let module = format!("(core module $m {})", "(memory 3)".repeat(memories));
            wat::parse_str(format!("(component {module} (core instance (instantiate $m)))")).unwrap()
        };
        let one = rt.compile("one.wasm", &component(1)).unwrap();
        let three = rt.compile("three.wasm", &component(3)).unwrap();
        let (a, b) = (one.engine.pool.unwrap(), three.engine.pool.unwrap());
        assert_eq!((a.slots, b.slots), (4, 4));
        assert_eq!((a.footprint.memories, b.footprint.memories), (1, 3));
        assert_eq!(a.footprint.initial_memory_bytes, 3 << 16);
        // Two engines, both loading what the compile cache keeps under the shared key.
        assert!(!wasmtime::Engine::same(&one.engine.engine, &three.engine.engine));
        assert_eq!(compatibility_key_of(&one.engine.engine), rt.compatibility_key());
        // No pools: the shared engine.
        let on_demand = Runtime::new(RuntimeConfig {
            instances_per_plugin: 0,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert!(
            on_demand
                .compile("one.wasm", &component(1))
                .unwrap()
                .engine
                .pool
                .is_none()
        );
    }
}

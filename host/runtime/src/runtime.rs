//! The engine, the linker, and loading: from bytes to a validated [`Plugin`].

use std::hash::{Hash, Hasher};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmop_contract::{CacheReader, EmptyCache};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline};

use crate::bindings::{v0_1, v0_2};
use crate::cache::{ArtifactCache, CacheStats, Digest, Lookup, sha256};
use crate::error::{CacheError, LoadError, RuntimeError};
use crate::host::HostState;
use crate::plugin::{Outcome, Plugin, PluginLimits, World, bounded, classify};

/// How the engine is set up; one per process is usual ([`Runtime::shared`]).
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// With [`pooling`](Self::pooling): plugin instances that can exist at once, across all
    /// plugins (one per running reconcile, one per plugin being loaded); past it a reconcile fails
    /// with a retryable error. Each slot reserves (but does not commit) address space for its
    /// linear memories, about 8 GiB. Unused by the on-demand allocator.
    pub max_instances: u32,
    /// Pre-reserve `max_instances` instance slots (wasmtime's pooling allocator) instead of mapping
    /// each instance's memories and stack when it is created and unmapping them when it is dropped
    /// (the on-demand allocator, the default: nothing is reserved while no reconcile runs).
    pub pooling: bool,
    /// How often the epoch advances: the granularity of deadlines, and how often a running guest
    /// yields to the async executor.
    pub epoch_tick: Duration,
    /// Where compiled plugins are kept on disk ([`ArtifactCache`]: a directory only this user can
    /// write, artifacts authenticated by an HMAC under a key kept there; anything else is ignored
    /// and rebuilt). `None` compiles every time; so does a directory that is refused (the reason is
    /// logged as an error and kept in [`Runtime::cache_error`]).
    pub cache_dir: Option<PathBuf>,
    /// The `wasmop` executable: with a cache, a plugin that is not in it is compiled by a child
    /// process (`wasmop compile`) and loaded from the artifact it writes, so the memory compiling
    /// takes (well over 100 MB, which the allocator keeps once freed) goes back to the system when
    /// the child exits. `None`, or a child that fails: compiled in this process.
    pub compiler: Option<PathBuf>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            max_instances: 16,
            pooling: false,
            epoch_tick: Duration::from_millis(10),
            cache_dir: None,
            compiler: None,
        }
    }
}

/// The wasmtime engine and the linker every plugin is instantiated with. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    /// [`Runtime::compatibility_key`], computed once.
    engine_key: Digest,
    linker: Linker<HostState>,
    cache: Option<ArtifactCache>,
    cache_error: Option<CacheError>,
    compiler: Option<PathBuf>,
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
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::new();
        // A Rust component is a handful of core instances (the program plus adapter shims) with
        // one or two memories and tables; leave room for more.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .total_stacks(n);
        let mut wasm = wasmtime::Config::new();
        wasm.wasm_component_model(true)
            .epoch_interruption(true)
            // Cranelift compiles a component's functions on every core (rayon).
            .parallel_compilation(true)
            .allocation_strategy(if config.pooling {
                InstanceAllocationStrategy::Pooling(pool)
            } else {
                InstanceAllocationStrategy::OnDemand
            });
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
        let engine = Engine::new(&wasm).map_err(|e| RuntimeError(format!("{e:#}")))?;
        let engine_key = {
            let mut h = Sha256Hasher(ring::digest::Context::new(&ring::digest::SHA256));
            engine.precompile_compatibility_hash().hash(&mut h);
            h.0.finish().as_ref().try_into().expect("32 bytes")
        };

        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError(format!("linking WASI: {e:#}")))?;
        // Both contract versions' imports: their instance names differ by version, so a 0.1 and a
        // 0.2 component link against the same linker.
        v0_2::Reconciler::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError(format!("linking the host imports (0.2): {e:#}")))?;
        v0_1::Reconciler::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError(format!("linking the host imports (0.1): {e:#}")))?;

        let weak = engine.weak();
        let tick = config.epoch_tick.max(Duration::from_millis(1));
        std::thread::Builder::new()
            .name("wasmop-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| RuntimeError(format!("starting the epoch ticker: {e}")))?;

        Ok(Runtime {
            inner: Arc::new(RuntimeInner {
                engine,
                engine_key,
                linker,
                cache,
                cache_error,
                compiler: config.compiler,
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
    pub(crate) fn engine(&self) -> &Engine {
        &self.inner.engine
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
    /// cache, and writes one after compiling), without checking it is a reconciler yet.
    pub fn compile(&self, file: &str, bytes: &[u8]) -> Result<CompiledPlugin, LoadError> {
        check_header(file, bytes)?;
        let cached = self.inner.cache.as_ref().map(|cache| (cache, sha256(bytes)));
        if let Some((cache, digest)) = &cached
            && let Lookup::Hit(component) = cache.lookup(&self.inner.engine, &self.inner.engine_key, digest)
        {
            return Ok(CompiledPlugin {
                file: file.to_string(),
                component,
                from_cache: true,
            });
        }
        if let (Some((cache, digest)), Some(exe)) = (&cached, &self.inner.compiler)
            && compile_in_child(exe, cache, file, bytes)
            && let Some(component) = cache.take_compiled(&self.inner.engine, &self.inner.engine_key, digest)
        {
            self.inner
                .child_compiles
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Ok(CompiledPlugin {
                file: file.to_string(),
                component,
                from_cache: false,
            });
        }
        let component = Component::new(&self.inner.engine, bytes).map_err(|e| LoadError::Compile {
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
            from_cache: false,
        })
    }

    /// Compiles a component to the engine's artifact format (what [`CompiledPlugin::serialize`]
    /// gives), for an on-disk cache. See [`compatibility_key`](Self::compatibility_key).
    pub fn precompile(&self, file: &str, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        check_header(file, bytes)?;
        self.inner
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
        let CompiledPlugin { file, component, .. } = compiled;
        let wrong_world = |reason: String| LoadError::WrongWorld {
            file: file.clone(),
            reason,
        };
        let pre = self
            .inner
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
        let mut store = self.store(label, Arc::new(EmptyCache), limits);
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
        Ok(Plugin::new(
            self.clone(),
            file,
            metadata,
            world,
            component,
            limits,
        ))
    }

    /// A fresh store for one call: its own WASI context, cache, memory cap and deadline.
    pub(crate) fn store(
        &self,
        plugin: Arc<str>,
        cache: Arc<dyn CacheReader>,
        limits: PluginLimits,
    ) -> Store<HostState> {
        let mut store = Store::new(
            &self.inner.engine,
            HostState::new(plugin, cache, limits.memory_bytes),
        );
        store.limiter(|s| &mut s.limiter);
        let deadline = Instant::now() + limits.deadline;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |mut ctx| {
            if Instant::now() >= deadline {
                ctx.data_mut().timed_out = true;
                Ok(UpdateDeadline::Interrupt)
            } else {
                // Let other tasks run, then check again at the next tick.
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

/// Runs `exe compile -o CACHE` on a private copy of `bytes` (the file may have changed since it was
/// read); whether it succeeded. Its errors are logged: the caller then compiles in-process, which
/// reports a broken plugin's error as usual.
fn compile_in_child(exe: &Path, cache: &ArtifactCache, file: &str, bytes: &[u8]) -> bool {
    let run = || -> Result<std::process::Output, std::io::Error> {
        let copy = crate::cache::temp_name(&cache.dir().join("plugin.wasm"))?;
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .and_then(|mut f| std::io::Write::write_all(&mut f, bytes));
        let output = written.and_then(|()| {
            std::process::Command::new(exe)
                .arg("compile")
                .arg("-o")
                .arg(cache.dir())
                .arg(&copy)
                .stdin(std::process::Stdio::null())
                .output()
        });
        let _ = std::fs::remove_file(&copy);
        output
    };
    match run() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            tracing::warn!(%file, status = %out.status, stderr = %stderr.trim(), "compiling in a child process failed; compiling here");
            false
        }
        Err(e) => {
            tracing::warn!(%file, exe = %exe.display(), error = %e, "cannot compile in a child process; compiling here");
            false
        }
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

    /// The compiled code in the engine's artifact format (as [`Runtime::precompile`] gives it).
    /// Loading it back is only done by the compile cache, for artifacts it authenticated.
    pub fn serialize(&self) -> Result<Vec<u8>, LoadError> {
        self.component.serialize().map_err(|e| LoadError::Serialize {
            file: self.file.clone(),
            reason: format!("{e:#}"),
        })
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
        let compiled = rt.compile("empty.wasm", EMPTY_COMPONENT).unwrap();
        let bytes = compiled.serialize().unwrap();
        assert!(!bytes.is_empty());
        assert!(!rt.precompile("empty.wasm", EMPTY_COMPONENT).unwrap().is_empty());
        assert_eq!(rt.compatibility_key(), rt.compatibility_key());
        // Another engine of the same configuration has the same key (it is not a random hash).
        let other = Runtime::new(RuntimeConfig {
            max_instances: 2,
            ..RuntimeConfig::default()
        })
        .unwrap();
        assert_eq!(other.compatibility_key(), rt.compatibility_key());
    }
}

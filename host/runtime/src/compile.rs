//! Bounds on compiling a plugin, so that a component that is huge or slow to compile (a compile
//! bomb) is refused instead of taking the host's memory or CPU: the size of a component file,
//! checked before anything else, and for a compile in a child process (`wasmop compile`, see
//! [`RuntimeConfig::compiler`](crate::RuntimeConfig::compiler)) a wall-clock timeout after which
//! the child is killed and a limit on its memory (`RLIMIT_DATA`, set with `prlimit` as soon as it
//! runs). A child stopped by either is the plugin's failure, reported with the file and the limit.
//! A host with a compiler never compiles in its own process, not even when the child cannot run:
//! the component is refused then, saying why.

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cache::ArtifactCache;
use crate::error::LoadError;

/// How much compiling one plugin may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// The largest component file that is compiled at all (in-process compiles included).
    pub max_component_bytes: u64,
    /// Wall-clock time a compile in a child process may take; then the child is killed.
    pub timeout: Duration,
    /// Memory of a compiling child process: its data segments and private writable mappings
    /// (`RLIMIT_DATA`; address space that is only reserved, as wasmtime reserves linear memories,
    /// does not count). Linux only.
    pub memory_bytes: u64,
}

impl CompileLimits {
    /// Components as built today are far below it: Rust plugins about 1 MB, TypeScript 12 MB,
    /// Python (the interpreter inside) 19 MB.
    pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 128 << 20;
    /// A Python plugin, the slowest to compile, takes 17 s in a debug build on 2 cores.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);
    /// A Python plugin compiles within 600 MB.
    pub const DEFAULT_MEMORY_BYTES: u64 = 2 << 30;
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            max_component_bytes: Self::DEFAULT_MAX_COMPONENT_BYTES,
            timeout: Self::DEFAULT_TIMEOUT,
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
        }
    }
}

/// Refuses a component over the size cap before it is compiled.
pub(crate) fn check_size(file: &str, bytes: &[u8], limits: &CompileLimits) -> Result<(), LoadError> {
    if bytes.len() as u64 > limits.max_component_bytes {
        return Err(LoadError::TooLarge {
            file: file.to_string(),
            size: bytes.len() as u64,
            cap: limits.max_component_bytes,
        });
    }
    Ok(())
}

/// How often a compiling child is checked on.
const POLL: Duration = Duration::from_millis(20);

/// What a child that ran to its end did.
pub(crate) enum ChildCompile {
    /// It exited successfully: its artifact is in the cache.
    Done,
    /// It exited with an error. If it compiled before failing (loading the plugin, after writing
    /// its artifact), the artifact is in the cache and loading it here reports the failure again;
    /// otherwise this is why the component does not compile.
    Failed(LoadError),
}

/// Runs `exe compile -o CACHE` on a private copy of `bytes` (the file may have changed since it was
/// read), within `limits`. `Err`: the child could not be run, or hit a limit (killed at the
/// timeout, or died of a signal, as when it runs out of its memory limit): the component is
/// refused. The host never compiles in its own process instead: nothing would bound that.
pub(crate) fn in_child(
    exe: &Path,
    cache: &ArtifactCache,
    file: &str,
    bytes: &[u8],
    limits: &CompileLimits,
) -> Result<ChildCompile, LoadError> {
    let cannot_run = |what: String| LoadError::Compiler {
        file: file.to_string(),
        reason: what,
    };
    let copy = crate::cache::temp_name(&cache.dir().join("plugin.wasm")).map_err(|e| {
        cannot_run(format!(
            "no private copy of it can be made for the compiler process in {}: {e}",
            cache.dir().display()
        ))
    })?;
    let outcome = write_copy(&copy, bytes).and_then(|()| run(exe, cache.dir(), &copy, limits));
    let _ = std::fs::remove_file(&copy);
    let (status, stderr, killed_at_timeout) =
        outcome.map_err(|e| cannot_run(format!("cannot run the compiler process {}: {e}", exe.display())))?;
    // The child names the private copy; the user knows the plugin by its file.
    let stderr = stderr.replace(&copy.display().to_string(), file);
    let stderr = stderr.trim();
    if killed_at_timeout {
        return Err(LoadError::CompileLimit {
            file: file.to_string(),
            limit: format!(
                "it took longer than the compile timeout of {:?}; the compiler process was killed",
                limits.timeout
            ),
        });
    }
    if status.success() {
        return Ok(ChildCompile::Done);
    }
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        let memory = stderr.contains("memory allocation of") || stderr.contains("out of memory");
        let limit = if memory {
            format!(
                "the compiler process ran out of its memory limit of {} bytes (signal {signal}){}",
                limits.memory_bytes,
                last_line(stderr)
            )
        } else {
            format!(
                "the compiler process was killed by signal {signal} (its memory limit is {} bytes){}",
                limits.memory_bytes,
                last_line(stderr)
            )
        };
        return Err(LoadError::CompileLimit {
            file: file.to_string(),
            limit,
        });
    }
    if stderr.contains("Cannot allocate memory") || stderr.contains("out of memory") {
        return Err(LoadError::CompileLimit {
            file: file.to_string(),
            limit: format!(
                "the compiler process ran out of its memory limit of {} bytes{}",
                limits.memory_bytes,
                last_line(stderr)
            ),
        });
    }
    Ok(ChildCompile::Failed(child_error(exe, file, status, stderr)))
}

/// The error a child that exited unsuccessfully reported: `wasmop compile` prints each plugin's
/// load error on a line of its own, `error: FILE: ...`. A compile error stays one (the same message
/// as compiling here would give); anything else is the compiler process's failure.
fn child_error(exe: &Path, file: &str, status: ExitStatus, stderr: &str) -> LoadError {
    let reported = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::trim);
    let compile = format!("{file}: the component does not compile: ");
    match reported {
        Some(line) if line.starts_with(&compile) => LoadError::Compile {
            file: file.to_string(),
            reason: line[compile.len()..].to_string(),
        },
        Some(line) => LoadError::Compiler {
            file: file.to_string(),
            reason: format!("the compiler process {} failed: {line}", exe.display()),
        },
        None => LoadError::Compiler {
            file: file.to_string(),
            reason: format!(
                "the compiler process {} failed ({status}){}",
                exe.display(),
                last_line(stderr)
            ),
        },
    }
}

fn write_copy(copy: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(copy)?;
    std::io::Write::write_all(&mut f, bytes)
}

/// Runs the child within the limits: its exit status, its stderr, and whether it was killed at the
/// timeout.
fn run(
    exe: &Path,
    cache_dir: &Path,
    copy: &Path,
    limits: &CompileLimits,
) -> std::io::Result<(ExitStatus, String, bool)> {
    let mut child = Command::new(exe)
        .arg("compile")
        .arg("-o")
        .arg(cache_dir)
        // The host's size cap, not the child's default: a file it accepts is compiled there.
        .arg("--max-plugin-size")
        .arg(limits.max_component_bytes.to_string())
        .arg(copy)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let started = Instant::now();
    limit_memory(&child, limits.memory_bytes);
    // Read stderr aside, so a chatty child never blocks on a full pipe.
    let pipe = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut pipe) = pipe {
            // At most 64 KiB of it is kept.
            let _ = (&mut pipe).take(64 << 10).read_to_end(&mut text);
            let _ = std::io::copy(&mut pipe, &mut std::io::sink());
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let (status, killed) = wait(&mut child, started + limits.timeout)?;
    let stderr = reader.join().unwrap_or_default();
    Ok((status, stderr, killed))
}

/// Waits for the child until `deadline`, then kills it.
fn wait(child: &mut Child, deadline: Instant) -> std::io::Result<(ExitStatus, bool)> {
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return Ok((child.wait()?, true));
        }
        std::thread::sleep(POLL);
    }
}

/// Sets the child's `RLIMIT_DATA` right after it started: long before it reads the component,
/// though not before its first instructions (setting it in the child before `exec` would need
/// `unsafe` code, which this workspace keeps to one reviewed call).
#[cfg(target_os = "linux")]
fn limit_memory(child: &Child, bytes: u64) {
    use rustix::process::{Pid, Resource, Rlimit, prlimit};
    let limit = Rlimit {
        current: Some(bytes),
        maximum: Some(bytes),
    };
    if let Err(e) = prlimit(Some(Pid::from_child(child)), Resource::Data, limit) {
        tracing::warn!(pid = child.id(), error = %e, "cannot limit the compiler process's memory");
    }
}

#[cfg(not(target_os = "linux"))]
fn limit_memory(_: &Child, _: u64) {}

/// `: LINE` with the line of the child's stderr that says what failed: the allocation that failed
/// if it says so (what follows it is about backtraces), else the last line.
fn last_line(stderr: &str) -> String {
    let mut lines = stderr.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = match lines.clone().find(|l| l.contains("memory allocation of")) {
        Some(line) => Some(line),
        None => lines.next_back(),
    };
    line.map(|l| format!(": {l}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_over_the_size_cap_is_refused_with_its_name_and_the_cap() {
        let limits = CompileLimits {
            max_component_bytes: 10,
            ..CompileLimits::default()
        };
        assert!(check_size("small.wasm", &[0; 10], &limits).is_ok());
        let err = check_size("big.wasm", &[0; 11], &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "big.wasm: the component is 11 bytes, over the cap of 10 bytes on component files; \
             it was not compiled"
        );
    }

    #[test]
    fn a_child_past_its_timeout_is_killed() {
        let mut child = Command::new("sleep").arg("10").spawn().unwrap();
        let started = Instant::now();
        let (status, killed) = wait(&mut child, started + Duration::from_millis(100)).unwrap();
        assert!(killed);
        assert!(!status.success());
        assert!(started.elapsed() < Duration::from_secs(5));
    }
}

//! Each plugin's own wasmtime engine, linker and instance pool, sized from its component.
//!
//! wasmtime's pooling allocator reserves every slot up front with the same limits for all modules
//! of an engine. One engine for every plugin would size each slot for the largest plugin (a Python
//! component's interpreter memories, tables of tens of thousands of entries) and let a busy plugin
//! take every slot. So each plugin gets an engine whose pool holds `slots` instances of exactly its
//! component: as many memories, tables and core instances as it instantiates, tables as large as
//! it declares (with room to grow), and the pages of each memory a call touched kept resident
//! between calls (up to [`KEEP_RESIDENT`]) so a fresh instance does not fault them in again. A
//! call waits for a free slot (the deadline starts after), so the pool's size bounds the plugin's
//! concurrent instances instead of failing calls. Pool settings are not part of the engine's
//! compatibility key, so every plugin's engine loads the same compile-cache artifacts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmop_contract::CacheReader;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Enabled, Engine, EngineWeak, InstanceAllocationStrategy, PoolingAllocationConfig, Store, UpdateDeadline,
};

use crate::bindings::{v0_1, v0_2};
use crate::error::RuntimeError;
use crate::host::HostState;
use crate::plugin::PluginLimits;

/// What one instance of a component needs from the pool, read from its binary before compiling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Footprint {
    /// Core module instantiations.
    pub core_instances: u32,
    /// Linear memories defined by the instantiated modules.
    pub memories: u32,
    /// Tables defined by the instantiated modules.
    pub tables: u32,
    /// The largest initial size of a memory, in bytes.
    pub initial_memory_bytes: u64,
    /// The largest initial size of a table, in elements.
    pub initial_table_elements: u64,
}

impl Footprint {
    /// Reads a component's (or module's) sections, nested ones included; `None` if it does not
    /// parse (compiling then reports why).
    pub fn of(bytes: &[u8]) -> Option<Footprint> {
        use wasmparser::{Instance, Parser, Payload};
        // Per module, in order of definition: its memories and tables. The sum over all modules is
        // exact for what wit-component produces (each module instantiated once); instantiations
        // beyond one per module are counted at the largest module's size. wasmtime's own count
        // after compiling is checked against this ([`Footprint::covers`]).
        let mut modules: Vec<(u32, u32)> = Vec::new();
        // Modules hold no modules or components: the first `End` after a module's start is its own.
        let mut in_module = false;
        let mut footprint = Footprint::default();
        let mut instantiations = 0u32;
        for payload in Parser::new(0).parse_all(bytes) {
            match payload.ok()? {
                Payload::ModuleSection { .. } => {
                    in_module = true;
                    modules.push((0, 0));
                }
                Payload::End(_) => in_module = false,
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        let memory = memory.ok()?;
                        let page = 1u64 << memory.page_size_log2.unwrap_or(16);
                        footprint.initial_memory_bytes = footprint
                            .initial_memory_bytes
                            .max(memory.initial.saturating_mul(page));
                        match modules.last_mut() {
                            Some(m) if in_module => m.0 += 1,
                            // A plain module (no component around it).
                            _ => footprint.memories += 1,
                        }
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        let table = table.ok()?;
                        footprint.initial_table_elements =
                            footprint.initial_table_elements.max(table.ty.initial);
                        match modules.last_mut() {
                            Some(m) if in_module => m.1 += 1,
                            _ => footprint.tables += 1,
                        }
                    }
                }
                Payload::InstanceSection(reader) => {
                    for instance in reader {
                        if let Instance::Instantiate { .. } = instance.ok()? {
                            instantiations += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        let (memories, tables): (u32, u32) = modules.iter().fold((0, 0), |(m, t), x| (m + x.0, t + x.1));
        let extra = instantiations.saturating_sub(modules.len() as u32);
        let max_memories = modules.iter().map(|m| m.0).max().unwrap_or(0);
        let max_tables = modules.iter().map(|m| m.1).max().unwrap_or(0);
        footprint.core_instances = instantiations.max(1);
        footprint.memories += memories + extra * max_memories;
        footprint.tables += tables + extra * max_tables;
        Some(footprint)
    }

    /// Whether `required` (what wasmtime counted after compiling) fits in this footprint.
    pub(crate) fn covers(&self, required: &wasmtime::ResourcesRequired) -> bool {
        required.num_memories <= self.memories.max(1)
            && required.num_tables <= self.tables.max(1)
            && required.max_initial_table_size.unwrap_or(0) <= self.table_elements() as u64
    }

    /// Elements a table slot holds: twice the largest initial table, at least 10 000 (half
    /// wasmtime's default; a guest may grow its table, as an interpreter does when it loads code).
    fn table_elements(&self) -> usize {
        self.initial_table_elements
            .saturating_mul(2)
            .clamp(10_000, 1 << 20) as usize
    }

    /// This footprint widened to hold what wasmtime counted after compiling.
    pub(crate) fn widened(self, required: &wasmtime::ResourcesRequired) -> Footprint {
        Footprint {
            memories: self.memories.max(required.num_memories),
            tables: self.tables.max(required.num_tables),
            // wasmtime counts memory sizes in (64 KiB) pages.
            initial_memory_bytes: self.initial_memory_bytes.max(
                required
                    .max_initial_memory_size
                    .unwrap_or(0)
                    .saturating_mul(1 << 16),
            ),
            initial_table_elements: self
                .initial_table_elements
                .max(required.max_initial_table_size.unwrap_or(0)),
            ..self
        }
    }
}

/// This much of each memory stays resident between calls: the pages of it a call dirtied are reset
/// in place (zeroed, or copied back from the module's initial data) instead of handed back to the
/// kernel and faulted in again by the next call. Only pages a call touched become resident, so a
/// plugin that uses 1 MiB keeps 1 MiB per slot. Measured on pdb-guard (4 KB Deployments, 1.2 MiB
/// high-water mark): 1 MiB kept resident cost 15-30 % more host CPU per object than 4-16 MiB.
const KEEP_RESIDENT: usize = 8 << 20;

/// An engine with the linker every plugin is instantiated with, and for a pooled engine, its
/// free slots. Several plugins may share one (the on-demand engine), one plugin never has two.
pub(crate) struct PluginEngine {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
    /// Free instance slots of a pooled engine; `None`: the on-demand allocator, no bound.
    slots: Option<tokio::sync::Semaphore>,
    /// How the pool was sized, if pooled.
    pub(crate) pool: Option<InstancePool>,
}

/// A plugin's instance pool: how many instances, each of what footprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstancePool {
    pub slots: u32,
    pub footprint: Footprint,
}

impl PluginEngine {
    /// The on-demand engine (instances mapped when a call starts, unmapped when it ends).
    pub(crate) fn on_demand(config: &wasmtime::Config) -> Result<PluginEngine, RuntimeError> {
        let mut config = config.clone();
        config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
        PluginEngine::with(config, None, None)
    }

    /// An engine whose pool holds `slots` instances of a component with this footprint.
    pub(crate) fn pooled(
        config: &wasmtime::Config,
        footprint: Footprint,
        slots: u32,
    ) -> Result<PluginEngine, RuntimeError> {
        let slots = slots.max(1);
        let memories = footprint.memories.max(1);
        let tables = footprint.tables.max(1);
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(slots)
            .max_core_instances_per_component(footprint.core_instances.max(1))
            .total_core_instances(slots.saturating_mul(footprint.core_instances.max(1)))
            .max_memories_per_component(memories)
            .max_memories_per_module(memories)
            .total_memories(slots.saturating_mul(memories))
            .max_tables_per_component(tables)
            .max_tables_per_module(tables)
            .total_tables(slots.saturating_mul(tables))
            .table_elements(footprint.table_elements())
            .total_stacks(slots)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            // Resets only the pages a call dirtied (Linux 6.7's PAGEMAP_SCAN) instead of memsetting
            // the whole kept-resident range after every call: memset was 4 % of the wasm arm's
            // profile, gone with this. Older kernels keep the memset.
            .pagemap_scan(Enabled::Auto)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(64 << 10);
        let mut config = config.clone();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        PluginEngine::with(
            config,
            Some(tokio::sync::Semaphore::new(slots as usize)),
            Some(InstancePool { slots, footprint }),
        )
    }

    fn with(
        config: wasmtime::Config,
        slots: Option<tokio::sync::Semaphore>,
        pool: Option<InstancePool>,
    ) -> Result<PluginEngine, RuntimeError> {
        let engine = Engine::new(&config).map_err(|e| RuntimeError(format!("{e:#}")))?;
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError(format!("linking WASI: {e:#}")))?;
        // Both contract versions' imports: their instance names differ by version, so a 0.1 and a
        // 0.2 component link against the same linker.
        v0_2::Reconciler::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError(format!("linking the host imports (0.2): {e:#}")))?;
        v0_1::Reconciler::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| RuntimeError(format!("linking the host imports (0.1): {e:#}")))?;
        Ok(PluginEngine {
            engine,
            linker,
            slots,
            pool,
        })
    }

    /// Waits for a free instance slot; hold it for as long as the call's store lives.
    pub(crate) async fn slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.slots {
            // The semaphore is never closed.
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        }
    }

    /// Takes a free slot without waiting (loading is synchronous); `None` if none is free or the
    /// engine has no pool.
    pub(crate) fn try_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.slots.as_ref().and_then(|s| s.try_acquire().ok())
    }

    /// A fresh store for one call: its own WASI context, cache, memory cap and deadline.
    pub(crate) fn store(
        &self,
        plugin: Arc<str>,
        cache: Arc<dyn CacheReader>,
        limits: PluginLimits,
    ) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(plugin, cache, limits.memory_bytes));
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

/// Advances the epoch of every live engine of a runtime: one thread for all plugins' engines.
#[derive(Default)]
pub(crate) struct Ticker {
    engines: Mutex<Vec<EngineWeak>>,
}

impl Ticker {
    /// Starts the thread; it stops once `ticker` is dropped.
    pub(crate) fn start(tick: Duration) -> Result<Arc<Ticker>, RuntimeError> {
        let ticker = Arc::new(Ticker::default());
        let weak = Arc::downgrade(&ticker);
        let tick = tick.max(Duration::from_millis(1));
        std::thread::Builder::new()
            .name("wasmop-epoch".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(ticker) => ticker.tick(),
                        None => break,
                    }
                }
            })
            .map_err(|e| RuntimeError(format!("starting the epoch ticker: {e}")))?;
        Ok(ticker)
    }

    pub(crate) fn add(&self, engine: &Engine) {
        self.engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(engine.weak());
    }

    /// Increments every live engine's epoch and forgets the dropped ones.
    fn tick(&self) {
        self.engines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|weak| match weak.upgrade() {
                Some(engine) => {
                    engine.increment_epoch();
                    true
                }
                None => false,
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_module_is_counted() {
        let bytes =
            wat::parse_str(r#"(module (memory 17) (memory 1) (table 3 funcref) (func (export "f")))"#)
                .unwrap();
        let f = Footprint::of(&bytes).unwrap();
        assert_eq!(f.memories, 2);
        assert_eq!(f.tables, 1);
        assert_eq!(f.initial_memory_bytes, 17 << 16);
        assert_eq!(f.initial_table_elements, 3);
    }

    #[test]
    fn a_component_counts_each_instantiation_of_its_modules() {
        let bytes = wat::parse_str(
            r#"(component
                (core module $a (memory 2) (table 5 funcref))
                (core module $b (memory 1) (memory 1))
                (core instance (instantiate $a))
                (core instance (instantiate $b))
                (core instance (instantiate $b)))"#,
        )
        .unwrap();
        let f = Footprint::of(&bytes).unwrap();
        assert_eq!(f.core_instances, 3);
        // $a once, $b twice: 1 + 2 + 2, the extra instantiation counted at the largest module's.
        assert_eq!(f.memories, 5);
        assert_eq!(f.tables, 1 + 1);
        assert_eq!(f.initial_memory_bytes, 2 << 16);
        assert!(Footprint::of(b"\0asm\x0d\0\x01\0garbage").is_none());
    }

    #[test]
    fn a_footprint_that_undercounts_is_widened_to_what_wasmtime_counted() {
        let read = Footprint {
            core_instances: 2,
            memories: 1,
            tables: 1,
            initial_memory_bytes: 1 << 16,
            initial_table_elements: 10,
        };
        let counted = wasmtime::ResourcesRequired {
            num_memories: 3,
            max_initial_memory_size: Some(4),
            num_tables: 1,
            max_initial_table_size: Some(30_000),
        };
        assert!(!read.covers(&counted));
        let widened = read.widened(&counted);
        assert!(widened.covers(&counted));
        assert_eq!(
            (
                widened.core_instances,
                widened.memories,
                widened.initial_memory_bytes
            ),
            (2, 3, 4 << 16)
        );
        assert_eq!(widened.table_elements(), 60_000);
    }
}

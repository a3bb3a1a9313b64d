//! Every `bindgen!` of the crate: the host side of both contract versions the runtime loads, one
//! module per world: [`v0_2`] (`wit/reconciler.wit`, `wasmop:reconciler@0.2.0`) and [`v0_1`]
//! (`wit/v0.1/reconciler.wit`, `wasmop:reconciler@0.1.0`, for plugins built before 0.2).
//!
//! Imports (`cache`, `log`) are synchronous host functions: they only read the cache and emit log
//! events (implemented once for both worlds, in `host.rs`). Exports are `async` so that a guest
//! runs inside `call_async` on a fiber and yields to the executor at every epoch tick instead of
//! blocking a tokio worker.

/// `wasmop:reconciler@0.2.0`, the current contract.
pub mod v0_2 {
    wasmtime::component::bindgen!({
        world: "reconciler",
        path: "../../wit",
        exports: { default: async },
    });

    pub use wasmop::reconciler::{cache, log, types};

    /// The contract version of this world.
    pub const VERSION: &str = "0.2.0";
}

/// `wasmop:reconciler@0.1.0`, the frozen first contract.
pub mod v0_1 {
    wasmtime::component::bindgen!({
        world: "reconciler",
        path: "../../wit/v0.1",
        exports: { default: async },
    });

    pub use wasmop::reconciler::{cache, log, types};

    /// The contract version of this world.
    pub const VERSION: &str = "0.1.0";
}

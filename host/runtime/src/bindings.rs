//! Every `bindgen!` of the crate: the host side of `wit/reconciler.wit` (world `reconciler`).
//!
//! Imports (`cache`, `log`) are synchronous host functions: they only read the cache and emit log
//! events. Exports are `async` so that a guest runs inside `call_async` on a fiber and yields to the
//! executor at every epoch tick instead of blocking a tokio worker.

wasmtime::component::bindgen!({
    world: "reconciler",
    path: "../../wit",
    exports: { default: async },
});

pub use wasmop::reconciler::{cache, log, types};

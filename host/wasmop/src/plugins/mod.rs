//! Drop-in plugins: the plugin directory is watched, and files that are added, replaced, renamed or
//! removed start, swap or stop plugins without a restart ([`manager`]); [`dir`] reads the directory;
//! [`status`] serves what is loaded to `wasmop plugins`.

pub mod dir;
pub mod manager;
pub mod status;

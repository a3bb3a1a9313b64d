//! stamp, version 1 (test fixture for hot reload): see `../stamp/stamp.rs`.

const STAMP: &str = "v1";
const STAMP_VERSION: &str = "1.0.0";

include!("../../stamp/stamp.rs");

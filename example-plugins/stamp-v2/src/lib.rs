//! stamp, version 2 (test fixture for hot reload): see `../stamp/stamp.rs`.

const STAMP: &str = "v2";
const STAMP_VERSION: &str = "2.0.0";

include!("../../stamp/stamp.rs");

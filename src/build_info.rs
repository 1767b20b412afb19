//! What this binary was built from: the crate version, the git revision and the rustc version
//! (recorded by `build.rs`), for `--version` and `m365_posture_build_info`.

/// The crate version (`Cargo.toml`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The git revision the binary was built from (12 hex digits), or "unknown".
pub const REVISION: &str = env!("M365_POSTURE_REVISION");
/// The version of the rustc that built it ("1.80.0"), or "unknown".
pub const RUSTC_VERSION: &str = env!("M365_POSTURE_RUSTC");
/// What `--version` prints after the name: `0.1.0 (revision 0123456789ab, rustc 1.80.0)`.
pub const VERSION_LINE: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("M365_POSTURE_REVISION"),
    ", rustc ",
    env!("M365_POSTURE_RUSTC"),
    ")"
);

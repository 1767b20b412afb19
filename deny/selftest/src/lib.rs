//! Empty: only the dependency matters (deny/selftest/Cargo.toml).

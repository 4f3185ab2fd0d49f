//! Integration tests live beside this crate root; see `fixtures.rs`, `properties.rs` and `cli.rs`.

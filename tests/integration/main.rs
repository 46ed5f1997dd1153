//! The integration tests, as one test binary: each module drives the real server (or the real `gongwen` binary)
//! over a real sled store in a temp dir. One binary instead of one per file, because each links the whole
//! dependency graph: some thirty of them made a test build several gigabytes and most of its link time.
//!
//! Kept as binaries of their own: `crash` (a long soak, run on its own with `--release`), `fuzz_regressions` (its
//! own commands in the README), and `failed_store_health` and `no_space`, which set this process's file-size limit.

#[path = "../common/mod.rs"]
mod common;
#[cfg(feature = "pdf")]
#[path = "../fixtures/parse/pdf_writer.rs"]
mod pdf_writer;

mod access;
mod ack_cli;
mod act;
mod attachments;
mod audit;
mod backup;
mod chain;
mod check_config;
mod cli_demo;
mod deferred;
mod failed_store;
mod format;
mod import;
mod import_cli;
mod inbox;
mod keys;
mod limits;
mod logs;
mod numbering;
mod ops;
mod parse;
mod parse_roundtrip;
mod parse_sources;
mod refusals;
mod registry;
mod states;
mod supervision;
mod tls;
mod trace_cache;

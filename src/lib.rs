//! gongwen: official-document forwarding and directive tracking (公文转发与督办追踪).

// No request may panic the server (a panicking handler drops its caller's call with no status): outside tests,
// clippy (CI's gate, `-D warnings`) refuses unwrap, expect and panic!. The fuzz harness panics on purpose and says so.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

/// Generated protobuf and gRPC code: the public contract in `proto/gongwen/v1`.
pub mod pb {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("gongwen.v1");
    // The servers, generated apart so that `Trace` answers with an encoded reply (see `build.rs`).
    include!(concat!(env!("OUT_DIR"), "/servers/gongwen.v1.rs"));

    /// Descriptor set of every gongwen proto file (for server reflection).
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("gongwen_descriptor");
}

pub mod alloc;
pub mod app;
pub mod auth;
pub mod cli;
pub mod domain;
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod metrics;
pub mod parse;
pub mod registry_file;
pub mod reports;
pub mod server;
pub mod signing;
pub mod store;
pub mod verify;

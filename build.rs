//! Generates the gRPC code from `proto/` with protox (a pure-Rust protobuf compiler), so no system `protoc` is
//! needed, and writes the descriptor set that server reflection can serve.
//!
//! Two passes: the first writes the messages and clients (`pb`), the second only the servers, with every message
//! taken from the first but two: the server answers `Trace` and `StreamTrace` with `grpc::trace_reply::Encoded`,
//! replies encoded where the tree is walked (see that module). Clients still get a `TraceReply` and `TraceChunk`s;
//! the wire and the descriptor set are the contract's. The generated servers name `crate::pb` and
//! `crate::grpc::trace_reply::Encoded`: moving either means changing the paths below.
use std::{env, path::PathBuf};

use prost::Message;

const PROTOS: &[&str] = &[
    "gongwen/v1/common.proto",
    "gongwen/v1/registry.proto",
    "gongwen/v1/document.proto",
    "gongwen/v1/delivery.proto",
    "gongwen/v1/trace.proto",
    "gongwen/v1/audit.proto",
    "gongwen/v1/supervision.proto",
    "gongwen/v1/auth.proto",
    "gongwen/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out = PathBuf::from(env::var("OUT_DIR")?);
    std::fs::write(out.join("gongwen_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().build_server(false).build_client(true).compile_fds(fds.clone())?;
    let servers = out.join("servers");
    std::fs::create_dir_all(&servers)?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(false)
        .out_dir(&servers)
        .extern_path(".gongwen.v1.TraceReply", "crate::grpc::trace_reply::Encoded")
        .extern_path(".gongwen.v1.TraceChunk", "crate::grpc::trace_reply::Encoded")
        .extern_path(".gongwen.v1", "crate::pb")
        .compile_fds(fds)?;
    Ok(())
}

//! Generates the gRPC code from `proto/` with protox (a pure-Rust protobuf compiler), so no system `protoc` is
//! needed, and writes the descriptor set that server reflection can serve.
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
    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(fds)?;
    Ok(())
}

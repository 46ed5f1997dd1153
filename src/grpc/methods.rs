//! Which calls stream, as the contract says: read from the descriptor sets the server also serves by reflection
//! (ours, tonic's health and reflection services), so that the layer in [`super::auth`] counts every streaming
//! call against the stream caps without a hand-kept list that a new RPC could be missing from.
use std::collections::HashSet;
use std::sync::LazyLock;

use prost::Message;
use prost_types::FileDescriptorSet;

/// Streaming calls whose reply may stay open with nothing to send for as long as the client likes: they end with
/// UNAVAILABLE when the server begins to stop, or a stopping server would wait on their clients. `Act` is not
/// among them although it is open-ended: it ends between two statements, never in the middle of one, so it watches
/// for the stop itself (`act::results`). The others' replies are finite, and are finished within the stop's grace.
pub const ENDS_AT_STOP: &[&str] = &[
    "/gongwen.v1.DeliveryService/WatchInbox",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// The descriptor sets of every service the server serves: ours, tonic's health, and reflection under both names.
const SERVED: [&[u8]; 4] = [
    crate::pb::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// The paths (`/package.Service/Method`) of every method served.
static ALL: LazyLock<HashSet<String>> =
    LazyLock::new(|| SERVED.iter().flat_map(|bytes| methods_in(bytes)).map(|(p, ..)| p).collect());

/// The paths of every method that streams its requests, its replies or both.
static STREAMING: LazyLock<HashSet<String>> = LazyLock::new(|| SERVED.iter().flat_map(|b| streaming_in(b)).collect());

/// Whether the method at `path` streams (requests, replies or both).
pub fn streams(path: &str) -> bool {
    STREAMING.contains(path)
}

/// `path` as the server's own copy, when it names a method the server serves.
pub fn served(path: &str) -> Option<&'static str> {
    ALL.get(path).map(String::as_str)
}

/// The streaming methods of one encoded descriptor set, and (as a separate list) those that stream requests.
fn methods_in(bytes: &[u8]) -> Vec<(String, bool, bool)> {
    // The sets are compiled in and tested below: one that failed to decode would be a build defect, not a request's.
    let Ok(set) = FileDescriptorSet::decode(bytes) else { return vec![] };
    let mut out = vec![];
    for file in set.file {
        let package = file.package.unwrap_or_default();
        for service in file.service {
            let name = service.name.unwrap_or_default();
            for m in service.method {
                let path = format!("/{package}.{name}/{}", m.name.unwrap_or_default());
                out.push((path, m.client_streaming.unwrap_or(false), m.server_streaming.unwrap_or(false)));
            }
        }
    }
    out
}

fn streaming_in(bytes: &[u8]) -> Vec<String> {
    methods_in(bytes).into_iter().filter(|(_, requests, replies)| *requests || *replies).map(|(p, ..)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streaming_methods_are_read_from_the_contract() {
        for path in [
            "/gongwen.v1.DeliveryService/Act",
            "/gongwen.v1.DeliveryService/WatchInbox",
            "/gongwen.v1.DocumentService/UploadAttachment",
            "/gongwen.v1.DocumentService/DownloadAttachment",
            "/gongwen.v1.PublicService/DownloadPublicAttachment",
            "/gongwen.v1.TraceService/StreamTrace",
            "/gongwen.v1.AuditService/StreamLog",
            "/gongwen.v1.AdminService/Backup",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        ] {
            assert!(streams(path), "{path} streams");
        }
        for path in ["/gongwen.v1.DeliveryService/Acknowledge", "/grpc.health.v1.Health/Check", "/nope/Nope"] {
            assert!(!streams(path), "{path} does not stream");
        }
        for path in ENDS_AT_STOP {
            assert!(streams(path), "{path} is a streaming method");
        }
    }

    #[test]
    fn the_calls_signed_without_a_body_digest_are_exactly_those_that_stream_requests() {
        let mut from_contract: Vec<String> = methods_in(crate::pb::FILE_DESCRIPTOR_SET)
            .into_iter()
            .filter(|(_, requests, _)| *requests)
            .map(|(p, ..)| p)
            .collect();
        from_contract.sort();
        let mut listed: Vec<String> = crate::auth::STREAMING_REQUESTS.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(listed, from_contract);
    }
}

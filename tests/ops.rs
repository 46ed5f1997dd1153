//! What standard tools need: gRPC health checking and server reflection, without a token.
mod common;

use common::*;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

#[tokio::test]
async fn health_and_reflection_answer_standard_clients() {
    let h = Harness::start().await;
    let mut health = HealthClient::new(h.raw_channel());
    let overall = health.check(HealthCheckRequest { service: String::new() }).await.expect("health").into_inner();
    assert_eq!(overall.status, ServingStatus::Serving as i32);

    gongwen::cli::client::health(&format!("http://{}", h.addr)).await.expect("`gongwen health` says SERVING");
    assert!(gongwen::cli::client::health("http://127.0.0.1:1").await.is_err(), "nothing listens there");

    let mut reflection = ServerReflectionClient::new(h.raw_channel());
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies =
        reflection.server_reflection_info(tokio_stream::iter(vec![req])).await.expect("reflection").into_inner();
    let reply = replies.message().await.expect("reply").expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected {reply:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for svc in
        ["gongwen.v1.DocumentService", "gongwen.v1.AuditService", "gongwen.v1.PublicService", "grpc.health.v1.Health"]
    {
        assert!(names.iter().any(|n| n == svc), "{svc} missing from {names:?}");
    }
}

//! The gRPC layer: one file per service. Handlers decode, call the application layer, and map errors.
pub mod act;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod convert;
pub mod deliveries;
pub mod documents;
pub mod limit;
pub mod methods;
pub mod public;
pub mod registry;
pub mod status;
pub mod supervision;
pub mod trace;
pub mod trace_reply;
mod trace_wire;

use crate::pb;

/// Default and largest page sizes of list RPCs.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1000;

/// (page size, token) from an optional page request.
pub(crate) fn page(p: Option<pb::PageRequest>) -> (usize, String) {
    let p = p.unwrap_or_default();
    (crate::app::pages::size_within(p.page_size, DEFAULT_PAGE, MAX_PAGE), p.page_token)
}

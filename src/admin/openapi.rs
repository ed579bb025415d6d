//! The OpenAPI 3.1 description of the admin API, served at `GET /api/openapi.json` (no token:
//! it holds no data) and linked from the status page.
//!
//! The document is written by hand in `docs/openapi.json` and compiled into the binary.
//! `tests/openapi.rs` keeps it true: every route the router registers
//! ([`super::registered_routes`]) is described with the right security and every described
//! route is registered; the examples deserialize into the request types; a live `GET /status`
//! has exactly the described properties.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

/// Where the document is served.
pub const PATH: &str = "/api/openapi.json";

/// The document (JSON).
pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

pub(super) async fn document() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], DOCUMENT)
}

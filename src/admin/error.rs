//! The one map from errors to HTTP status codes. Every error the admin API returns is a JSON
//! object `{ "error": CODE, "message": TEXT }` whose message tells a person what to do next.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::control::ControlError;

/// Body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code: `not_found`, `invalid`, `bad_request`, `unauthorized`,
    /// `persist_failed`, `reload_rejected`, `unavailable`, `payload_too_large`, `not_ready`.
    pub error: String,
    /// What went wrong and what would be valid.
    pub message: String,
}

/// An error of one admin request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The controller refused the command.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// The request could not be read: malformed JSON, wrong field types, bad query string.
    #[error("{0}")]
    BadRequest(String),
    /// The request was read but is not valid (e.g. both `for` and `expires`).
    #[error("{0}")]
    Invalid(String),
    /// No or wrong bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// No such route.
    #[error("{0}")]
    NoRoute(String),
    /// The body is larger than the limit.
    #[error("{0}")]
    TooLarge(String),
    /// The daemon is not ready yet (or stopping).
    #[error("{0}")]
    NotReady(String),
}

/// HTTP status and error code of `e`. The only place that decides them.
pub fn status_of(e: &ApiError) -> (StatusCode, &'static str) {
    match e {
        ApiError::Control(c) => match c {
            ControlError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ControlError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ControlError::Persist(_) => (StatusCode::SERVICE_UNAVAILABLE, "persist_failed"),
            ControlError::Reload(_) => (StatusCode::UNPROCESSABLE_ENTITY, "reload_rejected"),
            ControlError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ControlError::Cluster(_) => (StatusCode::SERVICE_UNAVAILABLE, "cluster_unavailable"),
        },
        ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
        ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
        ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, "not_found"),
        ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ApiError::NotReady(_) => (StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = status_of(&self);
        let body = ErrorBody {
            error: code.to_string(),
            message: self.to_string(),
        };
        let mut r = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"regdns\""),
            );
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_has_one_status() {
        let cases = [
            (ApiError::from(ControlError::NotFound("x".into())), 404),
            (ControlError::Invalid("x".into()).into(), 422),
            (ControlError::Persist("x".into()).into(), 503),
            (ControlError::Reload("x".into()).into(), 422),
            (ControlError::Unavailable.into(), 503),
            (ApiError::BadRequest("x".into()), 400),
            (ApiError::Invalid("x".into()), 422),
            (ApiError::Unauthorized("x".into()), 401),
            (ApiError::NoRoute("x".into()), 404),
            (ApiError::TooLarge("x".into()), 413),
            (ApiError::NotReady("x".into()), 503),
        ];
        for (e, want) in cases {
            assert_eq!(status_of(&e).0.as_u16(), want, "{e:?}");
        }
    }
}

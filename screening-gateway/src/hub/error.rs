//! The hub API's errors: an HTTP status and a message a gateway operator can act on, as JSON
//! `{"error": "..."}`.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use screening_core::ports::StoreError;

/// A refused or failed hub request.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, for the caller.
    pub message: String,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 with a message.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        if self.status == StatusCode::UNAUTHORIZED {
            (self.status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response()
        } else {
            (self.status, body).into_response()
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let status = match &error {
            StoreError::NotFound { .. } => StatusCode::NOT_FOUND,
            StoreError::WrongGateway { .. } => StatusCode::FORBIDDEN,
            StoreError::Lifecycle(_) | StoreError::VersionConflict { .. } => StatusCode::CONFLICT,
            StoreError::Corrupt(_) | StoreError::Backend(_) => {
                // Details stay in the server's log; the gateway only needs to know to retry.
                tracing::error!(%error, "hub: storage failed");
                return Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the hub's storage failed; retry later",
                );
            }
        };
        Self::new(status, error.to_string())
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        // 413 for an oversized body, 400 or 415 for malformed JSON or the wrong content type.
        Self::new(
            rejection.status(),
            format!("request body: {}", rejection.body_text()),
        )
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        Self::bad_request(format!("query string: {}", rejection.body_text()))
    }
}

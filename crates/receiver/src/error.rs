//! Every way a webhook can be refused, each with its status code, a short JSON body and a
//! stable reason label (used in the log line and the `outcome` metric label).
//!
//! Our own failures (broker down, nack, no confirm) are 503 so that WorkOS retries; never
//! 4xx for those.

use actix_web::{HttpResponse, http::StatusCode};
use workos_sync_core::{DecodeError, SignatureError};
use workos_sync_queue::PublishError;

#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("source address {0} is not in the allowlist")]
    Forbidden(String),
    #[error("content encoding {0:?} is not supported; send the body unencoded")]
    Encoded(String),
    #[error("body larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("body not received in time")]
    BodyTimeout,
    #[error("body could not be read: {0}")]
    BodyRead(String),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("malformed body: {0}")]
    Body(#[from] DecodeError),
    #[error("event not stored: {0}")]
    Publish(#[from] PublishError),
    /// The in-flight body budget is spent: come back shortly.
    #[error("too many request bodies in flight; retry later")]
    Busy,
    /// The connection was accepted past `receiver.max_connections`: come back shortly.
    #[error("too many connections; retry later")]
    TooManyConnections,
}

impl IngressError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Encoded(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::BodyRead(_) | Self::Body(_) => StatusCode::BAD_REQUEST,
            Self::Signature(SignatureError::NoSecret) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Signature(e) if e.is_auth_failure() => StatusCode::UNAUTHORIZED,
            Self::Signature(_) => StatusCode::BAD_REQUEST,
            Self::Publish(_) | Self::Busy | Self::TooManyConnections => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// Stable label: the `outcome` of the metric and the `reason` of the log line.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Forbidden(_) => "forbidden_ip",
            Self::Encoded(_) => "encoded_body",
            Self::TooLarge { .. } => "too_large",
            Self::BodyTimeout => "body_timeout",
            Self::BodyRead(_) => "body_read_error",
            Self::Signature(e) => e.reason(),
            Self::Body(_) => "malformed_body",
            Self::Publish(_) => "broker_unavailable",
            Self::Busy => "overloaded",
            Self::TooManyConnections => "too_many_connections",
        }
    }

    /// A short message safe to show the sender (no internals, no secrets).
    fn public_message(&self) -> String {
        match self {
            Self::Publish(_) => "event could not be stored; retry later".to_owned(),
            Self::Body(DecodeError::Json(_)) => "body is not a JSON event".to_owned(),
            other => other.to_string(),
        }
    }

    /// True when the refusal came before the body was read whole. The connection is
    /// then closed after the answer: reading (or draining) a body we refused would only
    /// hold buffers for it.
    pub fn body_unread(&self) -> bool {
        !matches!(
            self,
            Self::Signature(SignatureError::Mismatch) | Self::Body(_) | Self::Publish(_)
        )
    }

    pub fn response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status());
        if self.body_unread() {
            resp.force_close();
        }
        match self {
            // Tell well-behaved senders when to come back.
            Self::Publish(_) => {
                resp.insert_header(("Retry-After", "5"));
            }
            Self::Busy | Self::TooManyConnections => {
                resp.insert_header(("Retry-After", "1"));
            }
            _ => {}
        }
        resp.json(serde_json::json!({
            "error": self.reason(),
            "message": self.public_message(),
        }))
    }
}

//! The application layer's one error type. `grpc::status` turns it into a `tonic::Status`, in one place.
use thiserror::Error;

use crate::domain::DomainError;
use crate::store::StoreError;

/// Why a request was refused or failed.
#[derive(Debug, Error)]
pub enum AppError {
    /// The request is malformed (INVALID_ARGUMENT).
    #[error("{0}")]
    Invalid(String),
    /// Something named in the request does not exist (NOT_FOUND).
    #[error("{0}")]
    NotFound(String),
    /// Something to be created exists already with other content (ALREADY_EXISTS).
    #[error("{0}")]
    AlreadyExists(String),
    /// The request does not fit the current state (FAILED_PRECONDITION).
    #[error("{0}")]
    Precondition(String),
    /// The signer may not do this (PERMISSION_DENIED).
    #[error("{0}")]
    Denied(String),
    /// The request is not signed by a known, valid key (UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(String),
    /// A size or rate limit was hit (RESOURCE_EXHAUSTED).
    #[error("{0}")]
    Exhausted(String),
    /// The caller went away before the answer was complete (CANCELLED).
    #[error("the caller went away")]
    Cancelled,
    /// A broken domain rule; its variant decides the status.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// A storage failure; its variant decides the status.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AppError {
    /// Shorthand for an INVALID_ARGUMENT about one field.
    pub fn field(field: &str, reason: impl std::fmt::Display) -> Self {
        AppError::Invalid(format!("{field}: {reason}"))
    }
}

impl From<postcard::Error> for AppError {
    fn from(e: postcard::Error) -> Self {
        AppError::Store(StoreError::Corrupt { key: "(record)".into(), reason: e.to_string() })
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> Self {
        AppError::Store(StoreError::from(e))
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(e: tokio::task::JoinError) -> Self {
        AppError::Store(StoreError::Backend(format!("worker task failed: {e}")))
    }
}

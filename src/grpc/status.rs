//! The one place where errors become gRPC statuses.
use tonic::{Code, Status};

use crate::app::AppError;
use crate::domain::DomainError;
use crate::store::StoreError;

impl From<AppError> for Status {
    fn from(e: AppError) -> Status {
        let code = match &e {
            AppError::Invalid(_) => Code::InvalidArgument,
            AppError::NotFound(_) => Code::NotFound,
            AppError::AlreadyExists(_) => Code::AlreadyExists,
            AppError::Precondition(_) => Code::FailedPrecondition,
            AppError::Denied(_) => Code::PermissionDenied,
            AppError::Unauthenticated(_) => Code::Unauthenticated,
            AppError::Exhausted(_) => Code::ResourceExhausted,
            AppError::Cancelled => Code::Cancelled,
            AppError::Domain(d) => match d {
                DomainError::InvalidField { .. }
                | DomainError::InvalidNumber { .. }
                | DomainError::NoRecipients
                | DomainError::SkippedLevel { .. } => Code::InvalidArgument,
                DomainError::UnknownGroup(_) | DomainError::UnknownUnit(_) | DomainError::UnknownRegion(_) => {
                    Code::NotFound
                }
                DomainError::OutsideJurisdiction { .. } => Code::PermissionDenied,
                DomainError::BadTransition { .. } => Code::FailedPrecondition,
                DomainError::BadSignature(_) => Code::Unauthenticated,
            },
            AppError::Store(s) => match s {
                StoreError::TooLarge { .. } | StoreError::NoSpace(_) => Code::ResourceExhausted,
                StoreError::BlobMissing(_) => Code::NotFound,
                StoreError::Failed(_) => Code::Unavailable,
                StoreError::Backend(_)
                | StoreError::Corrupt { .. }
                | StoreError::DataDir { .. }
                | StoreError::BlobDamaged { .. } => Code::Internal,
            },
        };
        if code == Code::Internal {
            tracing::error!(error = %e, "request failed");
        }
        Status::new(code, e.to_string())
    }
}

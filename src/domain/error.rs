//! The domain layer's one error type: a broken rule, described so a person understands it.
use thiserror::Error;

/// Why a domain rule refused something. The application layer maps each variant to a gRPC status.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A field is missing or malformed.
    #[error("{field}: {reason}")]
    InvalidField { field: String, reason: String },
    /// A document number (发文字号) that does not parse.
    #[error("malformed document number {input:?}: {reason}")]
    InvalidNumber { input: String, reason: String },
    /// A recipient group name that the registry does not know.
    #[error("unknown recipient group {0:?}")]
    UnknownGroup(String),
    /// A unit id that the registry does not know.
    #[error("unknown unit {0:?}")]
    UnknownUnit(String),
    /// A region code that the registry does not know.
    #[error("unknown region {0:?}")]
    UnknownRegion(String),
    /// A recipient outside the issuer's administrative region.
    #[error("{recipient} is outside the jurisdiction of {issuer}")]
    OutsideJurisdiction { recipient: String, issuer: String },
    /// A main recipient more than one level down without the skipped level's unit on the cc list (越级行文).
    #[error(
        "{recipient} is more than one level below {issuer}: a {missing_level} unit above it (in region {region}) must be on the cc list (no skipping levels, 越级行文)"
    )]
    SkippedLevel { recipient: String, issuer: String, missing_level: String, region: String },
    /// A document with no recipient after expansion.
    #[error("the document has no main recipient")]
    NoRecipients,
    /// A delivery action that does not fit the delivery's current state.
    #[error("cannot {action} a delivery that is {state}")]
    BadTransition { state: String, action: String },
    /// A signature that does not verify, or a key that may not sign.
    #[error("signature rejected: {0}")]
    BadSignature(String),
}

impl DomainError {
    /// Shorthand for [`DomainError::InvalidField`].
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DomainError::InvalidField { field: field.into(), reason: reason.into() }
    }
}

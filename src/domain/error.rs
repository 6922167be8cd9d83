//! The one error type of the rules: what a service refuses, in words a person can act on.
//!
//! It knows nothing of HTTP. `http::error` maps it to a status and the contract's code in
//! one place; the CLI prints it with its cause.

/// Every failure a service (or the store under it) can report.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// Well-formed input that breaks a rule (empty body, too long, unknown value…).
    #[error("{0}")]
    Invalid(String),
    /// The thing does not exist, or the caller may not know that it does.
    #[error("not found")]
    NotFound,
    /// No valid credentials: missing, unknown, expired or revoked token.
    #[error("missing, unknown, expired or revoked token")]
    Unauthorized,
    /// Known caller, but its role may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The change collides with the current state (an email taken, the last admin…).
    #[error("{0}")]
    Conflict(String),
    /// Content over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// A limit on the caller's rate or share was reached; retry after this many seconds.
    #[error("too many requests, retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// The server keeps too little free disk to store this.
    #[error("{0}")]
    InsufficientStorage(String),
    /// The server is shutting down or cannot take the work now.
    #[error("the server is shutting down")]
    Unavailable,
    /// The database failed: the cause is kept for the log and the CLI.
    #[error("database error: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Anything else unexpected, with its cause.
    #[error("{0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DomainError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }

    /// An unexpected failure described in words (no underlying error value).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into().into())
    }
}

impl From<rusqlite::Error> for DomainError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Storage(Box::new(e))
    }
}

impl From<r2d2::Error> for DomainError {
    fn from(e: r2d2::Error) -> Self {
        Self::Storage(Box::new(e))
    }
}

impl From<serde_json::Error> for DomainError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_failure_keeps_its_cause_for_the_cli() {
        let error = DomainError::from(rusqlite::Error::InvalidQuery);
        assert!(error.to_string().starts_with("database error: "), "{error}");
    }
}

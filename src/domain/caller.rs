//! Who is making a request, once their token has been checked.

use crate::domain::{DomainError, Role};

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Visitor { id: String },
    Agent { id: String, role: Role },
}

impl Caller {
    pub fn id(&self) -> &str {
        match self {
            Caller::Visitor { id } | Caller::Agent { id, .. } => id,
        }
    }

    pub fn is_agent(&self) -> bool {
        matches!(self, Caller::Agent { .. })
    }

    /// The agent's id, or `Forbidden` for a visitor.
    pub fn require_agent(&self) -> Result<&str, DomainError> {
        match self {
            Caller::Agent { id, .. } => Ok(id),
            Caller::Visitor { .. } => Err(DomainError::Forbidden("only agents may do this")),
        }
    }

    pub fn require_admin(&self) -> Result<&str, DomainError> {
        match self {
            Caller::Agent {
                id,
                role: Role::Admin,
            } => Ok(id),
            _ => Err(DomainError::Forbidden("only admins may do this")),
        }
    }

    /// The visitor's id, or `Forbidden` for an agent.
    pub fn require_visitor(&self) -> Result<&str, DomainError> {
        match self {
            Caller::Visitor { id } => Ok(id),
            Caller::Agent { .. } => Err(DomainError::Forbidden("only visitors may do this")),
        }
    }

    /// Which side of a chat this caller writes on.
    pub fn sender(&self) -> crate::domain::Sender {
        if self.is_agent() {
            crate::domain::Sender::Agent
        } else {
            crate::domain::Sender::Visitor
        }
    }
}

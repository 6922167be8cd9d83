//! Who may see a chat: agents see every chat, a visitor only its own.

use crate::domain::{Caller, DomainError};
use crate::store::chats::{self, Access};
use crate::store::Db;

/// The chat if `caller` may see it (see [`ensure_visible`]).
pub fn visible_chat(db: &Db, chat_id: &str, caller: &Caller) -> Result<Access, DomainError> {
    let access = chats::access(db, chat_id)?.ok_or(DomainError::NotFound)?;
    ensure_visible(caller, &access.visitor_id)?;
    Ok(access)
}

/// A visitor asking for another's chat gets the same `NotFound` as for a chat that does not
/// exist, so existence is not leaked.
pub fn ensure_visible(caller: &Caller, chat_visitor_id: &str) -> Result<(), DomainError> {
    match caller {
        Caller::Agent { .. } => Ok(()),
        Caller::Visitor { id } if id == chat_visitor_id => Ok(()),
        Caller::Visitor { .. } => Err(DomainError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;

    #[test]
    fn agents_see_every_chat_and_visitors_only_their_own() {
        let agent = Caller::Agent {
            id: "a".into(),
            role: Role::Agent,
        };
        let owner = Caller::Visitor { id: "v1".into() };
        let other = Caller::Visitor { id: "v2".into() };
        assert!(ensure_visible(&agent, "v1").is_ok());
        assert!(ensure_visible(&owner, "v1").is_ok());
        assert!(matches!(
            ensure_visible(&other, "v1"),
            Err(DomainError::NotFound)
        ));
    }
}

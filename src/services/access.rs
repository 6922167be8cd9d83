//! Who may see a chat, and what of it: agents see every chat, a visitor only its own and
//! never its private notes or labels.

use crate::domain::{Caller, Chat, DomainError};
use crate::store::chats::{self, Access};
use crate::store::messages::{self, Shown};
use crate::store::Db;

/// The chat if `caller` may see it (see [`ensure_visible`]).
pub fn visible_chat(db: &Db, chat_id: &str, caller: &Caller) -> Result<Access, DomainError> {
    let access = chats::access(db, chat_id)?.ok_or(DomainError::NotFound)?;
    ensure_visible(caller, &access.visitor_id)?;
    Ok(access)
}

/// The whole chat (without `last_message`) if `caller` may see it, unfiltered: agents'
/// labels and the visitor's context included.
pub fn visible_whole_chat(db: &Db, chat_id: &str, caller: &Caller) -> Result<Chat, DomainError> {
    let chat = chats::find_bare(db, chat_id)?.ok_or(DomainError::NotFound)?;
    ensure_visible(caller, &chat.visitor.id)?;
    Ok(chat)
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

/// Which messages `caller` may read.
pub fn shown_to(caller: &Caller) -> Shown {
    if caller.is_agent() {
        Shown::All
    } else {
        Shown::Public
    }
}

/// The chat as `caller` may see it (see [`for_visitor`]). Call once `last_message` is set.
pub fn chat_for(db: &Db, caller: &Caller, chat: Chat) -> Result<Chat, DomainError> {
    if caller.is_agent() {
        Ok(chat)
    } else {
        for_visitor(db, chat)
    }
}

/// The chat as its visitor sees it: no labels nor context, and when the latest message is a private
/// note, the latest one that is not stands in `last_message`, `last_seq` and
/// `last_message_at`, so nothing there moves for a note. Read markers are shown at most at
/// that seq. (`unread_by_visitor` never counts notes.) Call once `last_message` is set.
pub fn for_visitor(db: &Db, mut chat: Chat) -> Result<Chat, DomainError> {
    chat.labels.clear();
    chat.mentioned = false;
    chat.visitor.context = None;
    let hides_a_note = match &chat.last_message {
        Some(last) => last.private,
        None => chat.last_seq > 0,
    };
    if hides_a_note {
        let last = messages::last_public(db, &chat.id)?;
        chat.last_seq = last.as_ref().map_or(0, |m| m.seq);
        chat.last_message_at = last.as_ref().map(|m| m.created_at.clone());
        chat.last_message = last;
    }
    chat.read.visitor = chat.read.visitor.min(chat.last_seq);
    chat.read.agent = chat.read.agent.min(chat.last_seq);
    Ok(chat)
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

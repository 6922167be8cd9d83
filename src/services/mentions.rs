//! `@mentions` in private notes: recorded in the note's own transaction, shown to the
//! mentioned agent as `chat.mentioned` until it reads the chat.

use crate::domain::mention;
use crate::domain::{Agent, Chat, DomainError, Message};
use crate::services::mail::Mail;
use crate::store::{agents, chats, mentions, Db};

/// Records the agents `note` mentions (not its author, only active agents), queues each an
/// email when mail is on (call [`Mail::wake`] after the commit), and returns them. Only
/// private notes mention: a reply to the visitor is not a message to a colleague.
pub fn record(
    db: &Db,
    note: &Message,
    author_id: &str,
    mail: &Mail,
) -> Result<Vec<Agent>, DomainError> {
    if !note.private || !note.body.contains('@') {
        return Ok(Vec::new());
    }
    let team = agents::list(db)?;
    let named: Vec<Agent> = mention::mentioned(&note.body, author_id, &team)
        .into_iter()
        .cloned()
        .collect();
    if named.is_empty() {
        return Ok(named);
    }
    let visitor_name = match mail.enabled() {
        true => chats::find_bare(db, &note.chat_id)?.and_then(|c| c.visitor.name),
        false => None,
    };
    for agent in &named {
        mentions::insert(db, &note.id, &note.chat_id, &agent.id, note.seq)?;
        mail.queue_mention(db, agent, note, visitor_name.as_deref())?;
    }
    Ok(named)
}

/// Sets `mentioned` on each of `chats` for the agent `agent_id` (one query for the lot).
pub fn flag(db: &Db, agent_id: &str, chats: &mut [Chat]) -> Result<(), DomainError> {
    if chats.is_empty() {
        return Ok(());
    }
    let unread = mentions::unread_chats(db, agent_id)?;
    for chat in chats {
        chat.mentioned = unread.contains(&chat.id);
    }
    Ok(())
}

/// The agent read `chat_id` up to `seq`: its mentions up to there are done.
pub fn mark_read(db: &Db, agent_id: &str, chat_id: &str, seq: i64) -> Result<(), DomainError> {
    mentions::mark_read(db, agent_id, chat_id, seq)?;
    Ok(())
}

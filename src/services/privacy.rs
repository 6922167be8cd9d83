//! A visitor's rights over its data (GDPR Art. 15 and 17): everything kept about it, as
//! one export, and its erasure — the visitor, its chats, messages, files, search entries,
//! rating, webhook payloads and tokens — with the disk scrubbed after.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{self, Caller, Chat, DomainError, Message, Visitor};
use crate::services::auth::Sessions;
use crate::services::webhooks::Webhooks;
use crate::store::{chats, messages, tokens, visitors, webhooks as queue, Db, Store};

/// Everything kept about a visitor.
#[derive(Debug, Serialize, ToSchema)]
pub struct VisitorExport {
    pub visitor: Visitor,
    /// Oldest first.
    pub chats: Vec<ChatExport>,
    #[schema(format = DateTime)]
    pub exported_at: String,
}

/// One chat of the export with all its messages, oldest first. The agents' private notes
/// are included (they are about the visitor), marked `private: true`; files are given by
/// their `attachment.url`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatExport {
    pub chat: Chat,
    pub messages: Vec<Message>,
}

/// The export of one visitor, in `db` (for the API and the CLI).
pub fn export_in(db: &Db, visitor_id: &str) -> Result<VisitorExport, DomainError> {
    let visitor = visitors::find(db, visitor_id)?.ok_or(DomainError::NotFound)?;
    let mut exported = Vec::new();
    for chat in chats::all_for_visitor(db, visitor_id)? {
        let messages = messages::all_of_chat(db, &chat.id)?;
        exported.push(ChatExport { chat, messages });
    }
    Ok(VisitorExport {
        visitor,
        chats: exported,
        exported_at: domain::now(),
    })
}

/// Deletes a visitor and everything keyed to it in `db`'s transaction, and queues the
/// `visitor.deleted` webhook. Returns the revoked token hashes (end their sessions once
/// this committed) and how many chats went.
pub fn erase_in(
    db: &Db,
    hooks: &Webhooks,
    visitor_id: &str,
) -> Result<(Vec<[u8; 32]>, usize), DomainError> {
    if visitors::find(db, visitor_id)?.is_none() {
        return Err(DomainError::NotFound);
    }
    let chat_ids = chats::ids_for_visitor(db, visitor_id)?;
    // Payloads of earlier events carry the chats' messages and the visitor's contact.
    queue::delete_for_chats(db, &chat_ids)?;
    let revoked = tokens::delete_for_owner(db, visitor_id, None)?;
    if !revoked.is_empty() {
        // Tells running servers (this one and any other on the database) to look again.
        tokens::bump_session_epoch(db)?;
    }
    // By cascade: chats, messages (and their search entries), files, labels, rating.
    visitors::delete(db, visitor_id)?;
    hooks.visitor_deleted(db, visitor_id, &chat_ids)?;
    Ok((revoked, chat_ids.len()))
}

/// Exports and erasures through the API (admins only). Cheap to clone.
#[derive(Clone)]
pub struct PrivacyService {
    store: Store,
    sessions: Sessions,
    webhooks: Webhooks,
}

impl PrivacyService {
    pub fn new(store: Store, sessions: Sessions, webhooks: Webhooks) -> Self {
        Self {
            store,
            sessions,
            webhooks,
        }
    }

    pub async fn export(
        &self,
        caller: &Caller,
        visitor_id: String,
    ) -> Result<VisitorExport, DomainError> {
        caller.require_admin()?;
        self.store.read(move |db| export_in(db, &visitor_id)).await
    }

    /// Erases the visitor: its tokens stop working at once here and on every other
    /// instance (held polls answer `401`), and once this returns its data is gone from
    /// the SQLite file and its write-ahead log.
    pub async fn erase(&self, caller: &Caller, visitor_id: String) -> Result<(), DomainError> {
        let admin_id = caller.require_admin()?.to_string();
        let hooks = self.webhooks.clone();
        let id = visitor_id.clone();
        let (revoked, chats) = self
            .store
            .write(move |db| erase_in(db, &hooks, &id))
            .await?;
        self.sessions.revoked(&revoked);
        self.webhooks.wake();
        // Ids only: the audit trail must not keep what was erased.
        log::info!("audit: visitor {visitor_id} erased with {chats} chats by admin {admin_id}");
        if let Err(e) = self.store.scrub().await {
            // The rows are gone (and their pages overwritten); the log may keep old copies
            // until the next checkpoint.
            log::error!("after erasing visitor {visitor_id}, scrubbing the database failed: {e}");
        }
        Ok(())
    }
}

//! Messages: appending one (the only place a message is written), pages of history, the
//! long poll of a chat, typing and read markers.

use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use futures_util::future::LocalBoxFuture;
use serde::Serialize;

use crate::domain::{
    self, Caller, Chat, ChatStatus, ClientId, DomainError, Message, MessageBody, ReadMarkers,
    Typing,
};
use crate::poll::{Hub, Parked, PollSlot, Published, Watch, Woken};
use crate::services::access::{
    chat_for, ensure_visible, shown_to, visible_chat, visible_whole_chat,
};
use crate::services::attachments::Upload;
use crate::services::bus::Bus;
use crate::services::limits::Limits;
use crate::services::mail::Mail;
use crate::services::mentions;
use crate::services::webhooks::Webhooks;
use crate::store::messages::{self, NewMessage};
use crate::store::{chats, Backend, Store};

/// What a message poll (or a page of history) answers.
#[derive(Debug, Serialize)]
pub struct PollAnswer {
    pub messages: Vec<Message>,
    pub next: i64,
    pub has_more: bool,
    pub chat: Chat,
    pub typing: Typing,
    pub read: ReadMarkers,
    /// Version of `typing` and `read`; pass it back as `state` in the next poll.
    pub state: u64,
}

impl PollAnswer {
    /// The answer made of the one message a writer handed over. Only messages everyone may
    /// see are handed over, so the chat as of that message is the visitor's too, but for
    /// the agents' labels and the visitor's context.
    fn handed_over(published: &Published, typing: Typing, caller: &Caller) -> Self {
        let mut chat = published.chat.clone();
        if !caller.is_agent() {
            chat.labels.clear();
            chat.visitor.context = None;
        }
        Self {
            messages: vec![published.message.clone()],
            next: published.message.seq,
            has_more: false,
            chat,
            typing,
            read: published.chat.read,
            state: published.state_version,
        }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy)]
pub enum Cursor {
    /// Messages with `seq > after`, oldest first: the poll.
    After(i64),
    /// The newest messages with `seq < before`: history, never held.
    Before(i64),
}

/// A message poll as the client asked for it.
#[derive(Debug, Clone, Copy)]
pub struct PollRequest {
    pub cursor: Cursor,
    pub limit: usize,
    pub wait: Duration,
    /// The `state` of the client's previous answer: a newer one answers at once.
    pub known_state: Option<u64>,
}

/// Messages of chats. Cheap to clone.
#[derive(Clone)]
pub struct MessageService {
    store: Store,
    hub: Hub,
    webhooks: Webhooks,
    limits: Arc<Limits>,
    bus: Bus,
    mail: Mail,
}

impl MessageService {
    pub fn new(
        store: Store,
        hub: Hub,
        webhooks: Webhooks,
        limits: Arc<Limits>,
        bus: Bus,
        mail: Mail,
    ) -> Self {
        Self {
            store,
            hub,
            webhooks,
            limits,
            bus,
            mail,
        }
    }

    /// The sender's rate limit; checked before anything is read or stored.
    pub fn check_send(&self, ip: IpAddr, caller: &Caller) -> Result<(), DomainError> {
        self.limits.check_send(ip, caller)
    }

    /// Commits a visitor's or agent's message (reopening a closed chat a visitor writes to),
    /// then wakes the chat's and the inbox's pollers. Returns the message and whether it is
    /// new: a repeated `client_id` of the same author in the same chat returns the original.
    /// A `private` message is a note for the agents: only agents may write one.
    pub async fn append(
        &self,
        caller: Caller,
        chat_id: String,
        body: MessageBody,
        client_id: Option<ClientId>,
        upload: Option<Upload>,
        private: bool,
    ) -> Result<(Message, bool), DomainError> {
        if private && !caller.is_agent() {
            return Err(DomainError::Forbidden(
                "only agents may write private notes",
            ));
        }
        let id = chat_id.clone();
        let hooks = self.webhooks.clone();
        let hub = self.hub.clone();
        let bus = self.bus.clone();
        let mail = self.mail.clone();
        // What finds the original when the send repeats a client_id (see below).
        let repeat_key = client_id.clone().map(|c| (c, caller.id().to_string()));
        let written = self
            .store
            .write(move |db| {
                // Read before the chat snapshot below, so the snapshot is never newer than it.
                let state_version = hub.state_version(&id);
                // A chat with pollers is read whole, once: what is handed to them below is
                // this read with the message applied. On PostgreSQL another instance may
                // commit in between, so that copy is read again after the insert.
                let whole = if db.backend() == Backend::Sqlite && hub.is_watched(&id) {
                    Some(visible_whole_chat(db, &id, &caller)?)
                } else {
                    None
                };
                let access = match &whole {
                    Some(chat) => chats::Access::of(chat),
                    None => visible_chat(db, &id, &caller)?,
                };
                let author = messages::author(db, caller.id())?;
                // Looked up before the insert: on PostgreSQL the insert holds the message
                // seq lock until the commit (see `store::messages::next_seq`).
                let subscribers = hooks.subscribers(db, "message.created")?;
                mail.schedule_notification(db, &id, caller.sender(), private)?;
                // The bytes stream into their row; the received file is released once saved.
                let attachment = upload.map(|upload| upload.save(db, &id)).transpose()?;
                let reopens = access.status == ChatStatus::Closed && !caller.is_agent();
                if reopens {
                    chats::set_status(db, &id, ChatStatus::Open, &domain::now())?;
                    messages::insert_event(
                        db,
                        &id,
                        "reopened",
                        "Chat reopened by the visitor".into(),
                        Some(author.clone()),
                        false,
                    )?;
                }
                let repeatable = client_id.is_some();
                let message = messages::insert(
                    db,
                    NewMessage {
                        id: domain::new_id(),
                        chat_id: &id,
                        sender: caller.sender(),
                        author: Some(author),
                        body: body.into_inner(),
                        client_id: client_id.map(|c| c.as_str().to_string()),
                        event: None,
                        created_at: domain::now(),
                        attachment,
                        private,
                    },
                )
                .map_err(|e| {
                    if repeatable && e.is_unique_violation() {
                        repeated_client_id()
                    } else {
                        e.into()
                    }
                })?;
                hooks.message_created_to(db, &subscribers, &message)?;
                mentions::record(db, &message, caller.id(), &mail)?;
                bus.message_committed(db, &id, message.seq)?;
                // The message this one follows. With one writer that is the last seq read
                // above; with writers on several instances (PostgreSQL) another one may have
                // committed since, and only the seq lock `insert` took makes it final.
                let prev_seq = match db.backend() {
                    Backend::Sqlite => access.last_seq,
                    Backend::Postgres => messages::prev_seq(db, &id, message.seq)?,
                };
                // Hand the message and its chat to waiting pollers, so they answer without a
                // read. (Not when a reopen came first: then the pollers need two messages.
                // Never a private note: a visitor's poller must not get it, and an agent's
                // reads it as easily.)
                let published = if reopens || private || !hub.has_poller_at(&id, prev_seq) {
                    None
                } else {
                    let chat = match whole {
                        Some(mut chat) => {
                            chat.record_message(&message);
                            chat
                        }
                        None => {
                            let mut chat =
                                chats::find_bare(db, &id)?.ok_or(DomainError::NotFound)?;
                            chat.last_message = Some(message.clone());
                            chat
                        }
                    };
                    Some(Published {
                        prev_seq,
                        message: message.clone(),
                        chat,
                        state_version,
                    })
                };
                Ok((message, true, published))
            })
            .await;
        let (message, created, published) = match (written, repeat_key) {
            // The index refused a repeated client_id, and the job (a reopen, an upload, the
            // mail it scheduled) was rolled back: answer with the original. Found from the
            // writer, as it may be in the same batch. Cheaper than looking before every send.
            (Err(conflict @ DomainError::Conflict(_)), Some((client_id, author_id))) => {
                let id = chat_id.clone();
                let found = self
                    .store
                    .write(move |db| {
                        let found =
                            messages::find_by_client_id(db, &id, &author_id, client_id.as_str())?;
                        Ok(found)
                    })
                    .await?;
                (found.ok_or(conflict)?, false, None)
            }
            (written, _) => written?,
        };
        if created {
            self.hub.message_added(&chat_id, message.seq, published);
            self.webhooks.wake();
            // Its worker learns of the notification just scheduled.
            self.mail.wake();
        }
        Ok((message, created))
    }

    /// The long poll of a chat (or, with [`Cursor::Before`], a page of history): answers at
    /// once when there are messages after the cursor or a newer typing/read state, else
    /// waits up to `wait` for one. A revoked token's poll ends with `Unauthorized`.
    ///
    /// Not an `async fn`, for the reason given at [`Hub::park`].
    #[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
    pub fn poll<'a>(
        &'a self,
        caller: &'a Caller,
        chat_id: &'a str,
        request: &'a PollRequest,
        slot: Option<&'a PollSlot>,
    ) -> impl Future<Output = Result<PollAnswer, DomainError>> + 'a {
        async move {
            let (after, slot) = match (request.cursor, slot) {
                (Cursor::After(after), Some(slot))
                    if !request.wait.is_zero() && !self.hub.is_shutting_down() =>
                {
                    (after, slot)
                }
                _ => {
                    return self
                        .read_page(caller, chat_id, request.cursor, request.limit)
                        .await
                        .map(|(page, _)| page)
                }
            };
            // What the client knew of typing and read markers, for a visitor's second wait.
            let known = request
                .known_state
                .unwrap_or_else(|| self.hub.state_version(chat_id));
            let watch = Watch::Chat { chat_id, after };
            let read = || self.read_news(caller, chat_id, request, request.known_state);
            let woken = match self.hub.park(watch, slot, request.wait, read).await? {
                Parked::Ready(page) => return Ok(page),
                // Woken by the one message that follows our cursor: its writer's copy answers.
                Parked::HandedOver(published) => {
                    return Ok(PollAnswer::handed_over(
                        &published,
                        self.hub.typing(chat_id),
                        caller,
                    ))
                }
                Parked::Woken(woken) => woken,
            };
            match woken {
                Woken::Revoked => Err(DomainError::Unauthorized),
                // A visitor woken by what it may not see (a private note) waits on. (Awaited
                // after the match on `Parked`: within it, the matched value would stay in
                // this future for the whole second wait.)
                Woken::Change if !caller.is_agent() => {
                    self.wait_on(caller, chat_id, request, slot, known).await
                }
                _ => self
                    .read_page(caller, chat_id, request.cursor, request.limit)
                    .await
                    .map(|(page, _)| page),
            }
        }
    }

    /// A parked poll's read: the page, if it has news for a poller that knows state
    /// `known` (messages after its cursor, or newer typing/read markers), else `None`.
    #[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
    fn read_news<'a>(
        &'a self,
        caller: &'a Caller,
        chat_id: &'a str,
        request: &'a PollRequest,
        known: Option<u64>,
    ) -> impl Future<Output = Result<Option<PollAnswer>, DomainError>> + 'a {
        async move {
            let Cursor::After(after) = request.cursor else {
                // A page of history is never held: it is the answer.
                let (page, _) = self
                    .read_page(caller, chat_id, request.cursor, request.limit)
                    .await?;
                return Ok(Some(page));
            };
            // At the head already (a re-poll right after an answer): nothing to read, so no
            // database read and no hop to the blocking pool.
            let visitor = (!caller.is_agent()).then(|| caller.id());
            if self.hub.at_head(chat_id, after, known, visitor) {
                return Ok(None);
            }
            // The page is only a temporary here: kept, it would stay in the parked future.
            let (page, head) = self
                .read_page(caller, chat_id, Cursor::After(after), request.limit)
                .await?;
            self.hub.note_head(chat_id, head, &page.chat.visitor.id);
            let stale_state = known.is_some_and(|known| known != page.state);
            Ok((!page.messages.is_empty() || stale_state).then_some(page))
        }
    }

    /// A visitor's poll woken by a change it may not see (a private note: notes wake every
    /// poller of their chat) parks again for the rest of its wait, answering as a poll does
    /// for anything it may see, typing and read markers newer than `known` included.
    ///
    /// Boxed, and only reached after such a wake: the first wait's future stays as small.
    fn wait_on<'a>(
        &'a self,
        caller: &'a Caller,
        chat_id: &'a str,
        request: &'a PollRequest,
        slot: &'a PollSlot,
        known: u64,
    ) -> LocalBoxFuture<'a, Result<PollAnswer, DomainError>> {
        Box::pin(async move {
            let deadline = slot.claimed_at() + request.wait;
            let Cursor::After(after) = request.cursor else {
                // Only a poll after a cursor parks: a page of history is never held.
                return self
                    .read_page(caller, chat_id, request.cursor, request.limit)
                    .await
                    .map(|(page, _)| page);
            };
            loop {
                let wait = deadline.saturating_duration_since(Instant::now());
                if wait.is_zero() || self.hub.is_shutting_down() {
                    break;
                }
                let watch = Watch::Chat { chat_id, after };
                let read = || self.read_news(caller, chat_id, request, Some(known));
                match self.hub.park(watch, slot, wait, read).await? {
                    Parked::Ready(page) => return Ok(page),
                    Parked::HandedOver(published) => {
                        return Ok(PollAnswer::handed_over(
                            &published,
                            self.hub.typing(chat_id),
                            caller,
                        ))
                    }
                    Parked::Woken(Woken::Revoked) => return Err(DomainError::Unauthorized),
                    Parked::Woken(Woken::Change) => {}
                    Parked::Woken(_) => break,
                }
            }
            self.read_page(caller, chat_id, request.cursor, request.limit)
                .await
                .map(|(page, _)| page)
        })
    }

    /// A page as the caller may see it, and the chat's last seq (notes included: what the
    /// hub's head must know).
    ///
    /// Boxed, so a parked poll's future holds only what it waits with: inline, a read's
    /// state (its answer, the pool's and the blocking task's futures) would more than double
    /// the memory each of 10,000 held polls costs.
    fn read_page<'a>(
        &'a self,
        caller: &Caller,
        chat_id: &str,
        cursor: Cursor,
        limit: usize,
    ) -> LocalBoxFuture<'a, Result<(PollAnswer, i64), DomainError>> {
        let caller = caller.clone();
        let id = chat_id.to_string();
        // The version is read before the state it describes, so it never claims too much.
        let version = self.hub.state_version(chat_id);
        let typing = self.hub.typing(chat_id);
        Box::pin(self.store.read(move |db| {
            // One read of the chat serves the access check, the markers and the answer.
            let mut chat = chats::find_bare(db, &id)?.ok_or(DomainError::NotFound)?;
            ensure_visible(&caller, &chat.visitor.id)?;
            let head = chat.last_seq;
            let shown = shown_to(&caller);
            let (page, next) = match cursor {
                Cursor::After(after) => {
                    let page = messages::after(db, &id, after, limit, shown)?;
                    let next = page.messages.last().map_or(after, |m| m.seq);
                    (page, next)
                }
                Cursor::Before(before) => {
                    let page = messages::before(db, &id, before, limit, shown)?;
                    let next = page.messages.last().map_or(before.max(1) - 1, |m| m.seq);
                    (page, next)
                }
            };
            chat.last_message = match page.messages.last() {
                Some(last) if last.seq == chat.last_seq => Some(last.clone()),
                _ if chat.last_seq > 0 => messages::find_by_seq(db, chat.last_seq)?,
                _ => None,
            };
            let chat = chat_for(db, &caller, chat)?;
            let answer = PollAnswer {
                messages: page.messages,
                next,
                has_more: page.has_more,
                read: chat.read,
                chat,
                typing,
                state: version,
            };
            Ok((answer, head))
        }))
    }

    /// Records whether the caller is typing in a chat it may see.
    pub async fn set_typing(
        &self,
        caller: Caller,
        chat_id: String,
        typing: bool,
    ) -> Result<(), DomainError> {
        let id = chat_id.clone();
        let agent_side = caller.is_agent();
        self.store
            .read(move |db| visible_chat(db, &id, &caller).map(drop))
            .await?;
        self.hub.set_typing(&chat_id, agent_side, typing);
        Ok(())
    }

    /// Moves the caller's side's read marker forward to `seq` (never back).
    pub async fn mark_read(
        &self,
        caller: Caller,
        chat_id: String,
        seq: i64,
    ) -> Result<(), DomainError> {
        if seq < 0 {
            return Err(DomainError::invalid("seq must not be negative"));
        }
        let id = chat_id.clone();
        let moved = self
            .store
            .write(move |db| {
                visible_chat(db, &id, &caller)?;
                if caller.is_agent() {
                    mentions::mark_read(db, caller.id(), &id, seq)?;
                }
                Ok(chats::mark_read(db, &id, caller.is_agent(), seq)?)
            })
            .await?;
        if moved {
            self.hub.state_changed(&chat_id);
        }
        Ok(())
    }
}

/// What a send whose `client_id` the index refused fails with, when the original cannot be
/// found after all (deleted in between); found, the original is the answer.
fn repeated_client_id() -> DomainError {
    DomainError::Conflict("a message with this client_id exists".into())
}

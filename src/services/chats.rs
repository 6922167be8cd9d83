//! Chats: a visitor opening one, agents listing, assigning, closing and reopening them, and
//! the agents' inbox long poll.

use std::future::Future;
use std::time::Duration;

use futures_util::future::LocalBoxFuture;

use crate::domain::context::ContextUpdate;
use crate::domain::{
    self, Caller, Chat, ChatStatus, DomainError, Labels, MessageBody, NewRating, Rating, Sender,
};
use crate::poll::{Hub, Parked, PollSlot, Watch, Woken};
use crate::services::access::{chat_for, for_visitor, visible_chat};
use crate::services::bus::Bus;
use crate::services::mail::Mail;
use crate::services::mentions;
use crate::services::visitors::record_context_in;
use crate::services::webhooks::Webhooks;
use crate::store::chats::{self, Filter};
use crate::store::messages::NewMessage;
use crate::store::{agents, messages, ratings, Store};

/// Most chats one visitor may open over its lifetime; a brake on scripted abuse.
pub const MAX_CHATS_PER_VISITOR: i64 = 50;

/// Whose chats an agent's list shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssigneeFilter {
    Anyone,
    /// The calling agent's.
    Me,
    Unassigned,
    Agent(String),
}

/// Which chats an agent's list shows.
#[derive(Debug, Clone)]
pub struct ListFilter {
    /// `None`: every status.
    pub status: Option<ChatStatus>,
    pub assignee: AssigneeFilter,
    /// Only chats with this label (already checked with `domain::parse_label`).
    pub label: Option<String>,
    /// Only this visitor's chats.
    pub visitor_id: Option<String>,
    pub limit: usize,
}

/// A change an agent asks for; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ChatChange {
    pub status: Option<ChatStatus>,
    /// `Some(None)` unassigns.
    pub assignee_id: Option<Option<String>>,
    /// Replaces the chat's labels.
    pub labels: Option<Labels>,
    /// With `assignee_id`: a private note from the acting agent, stored right after the
    /// `assigned` system message when the assignee changes (a repeated transfer adds none).
    pub note: Option<MessageBody>,
}

/// What the inbox poll answers: the chats changed after the cursor, and the next cursor.
pub struct InboxAnswer {
    pub chats: Vec<Chat>,
    pub next: i64,
}

/// Chats. Cheap to clone.
#[derive(Clone)]
pub struct ChatService {
    store: Store,
    hub: Hub,
    webhooks: Webhooks,
    bus: Bus,
    mail: Mail,
}

impl ChatService {
    pub fn new(store: Store, hub: Hub, webhooks: Webhooks, bus: Bus, mail: Mail) -> Self {
        Self {
            store,
            hub,
            webhooks,
            bus,
            mail,
        }
    }

    /// A visitor's open chat, or a new one; returns whether it is new. Records the
    /// visitor's context (see [`record_context_in`]).
    pub async fn open_for_visitor(
        &self,
        caller: &Caller,
        context: Option<ContextUpdate>,
        user_agent: Option<String>,
    ) -> Result<(Chat, bool), DomainError> {
        let visitor_id = caller.require_visitor()?.to_string();
        let hooks = self.webhooks.clone();
        let (chat, created) = self
            .store
            .write(move |db| {
                record_context_in(db, &visitor_id, context, user_agent.as_deref())?;
                if let Some(open) = chats::open_id_for_visitor(db, &visitor_id)? {
                    let chat = chats::find(db, &open)?.ok_or(DomainError::NotFound)?;
                    return Ok((for_visitor(db, chat)?, false));
                }
                if chats::count_for_visitor(db, &visitor_id)? >= MAX_CHATS_PER_VISITOR {
                    return Err(DomainError::invalid(
                        "this visitor has opened too many chats",
                    ));
                }
                let id = domain::new_id();
                chats::insert(db, &id, &visitor_id, &domain::now())?;
                let chat = chats::find(db, &id)?.ok_or(DomainError::NotFound)?;
                hooks.chat_created(db, &chat)?;
                Ok((for_visitor(db, chat)?, true))
            })
            .await?;
        if created {
            self.webhooks.wake();
        }
        Ok((chat, created))
    }

    /// The visitor's open chat, else its most recent one.
    pub async fn current_for_visitor(&self, caller: &Caller) -> Result<Chat, DomainError> {
        let visitor_id = caller.require_visitor()?.to_string();
        self.store
            .read(move |db| {
                let chat =
                    chats::current_for_visitor(db, &visitor_id)?.ok_or(DomainError::NotFound)?;
                for_visitor(db, chat)
            })
            .await
    }

    /// Chats by most recent activity (agents only).
    pub async fn list(
        &self,
        caller: &Caller,
        filter: ListFilter,
    ) -> Result<Vec<Chat>, DomainError> {
        let agent_id = caller.require_agent()?.to_string();
        let assignee = match filter.assignee {
            AssigneeFilter::Anyone => None,
            AssigneeFilter::Me => Some(agent_id.clone()),
            AssigneeFilter::Unassigned => Some(String::new()),
            AssigneeFilter::Agent(id) => Some(id),
        };
        self.store
            .read(move |db| {
                let query = Filter {
                    status: filter.status,
                    assignee: assignee.as_deref(),
                    label: filter.label.as_deref(),
                    visitor_id: filter.visitor_id.as_deref(),
                    limit: filter.limit,
                };
                let mut found = chats::list(db, &query)?;
                mentions::flag(db, &agent_id, &mut found)?;
                Ok(found)
            })
            .await
    }

    /// One chat, to an agent or the chat's visitor.
    pub async fn get(&self, caller: Caller, chat_id: String) -> Result<Chat, DomainError> {
        self.store
            .read(move |db| {
                visible_chat(db, &chat_id, &caller)?;
                let mut chat = chats::find(db, &chat_id)?.ok_or(DomainError::NotFound)?;
                if caller.is_agent() {
                    mentions::flag(db, caller.id(), std::slice::from_mut(&mut chat))?;
                }
                chat_for(db, &caller, chat)
            })
            .await
    }

    /// Applies an agent's change; each effective change of status or assignee appends a
    /// system message, so pollers learn of it through the same cursor. A label change
    /// appends a private `labeled` event: the labels are the agents' own.
    pub async fn change(
        &self,
        caller: &Caller,
        chat_id: String,
        change: ChatChange,
    ) -> Result<Chat, DomainError> {
        let actor_id = caller.require_agent()?.to_string();
        if change.note.is_some() && change.assignee_id.is_none() {
            return Err(DomainError::invalid(
                "a note goes with a transfer: send it with assignee_id",
            ));
        }
        let id = chat_id.clone();
        let hooks = self.webhooks.clone();
        let bus = self.bus.clone();
        let mail = self.mail.clone();
        let (chat, changed) = self
            .store
            .write(move |db| {
                let access = chats::access(db, &id)?.ok_or(DomainError::NotFound)?;
                // Looked up before any insert (see `MessageService::append`).
                let subscribers = match change.note {
                    Some(_) => Some(hooks.subscribers(db, "message.created")?),
                    None => None,
                };
                let actor = messages::author(db, &actor_id)?;
                let actor_name = actor.name.clone().unwrap_or_else(|| "an agent".into());
                let mut changed = false;
                let label_diff = match &change.labels {
                    Some(labels) => chats::set_labels(db, &id, labels.as_slice())?,
                    None => None,
                };
                if let Some(diff) = label_diff {
                    // A private event: the agents' inbox polls learn of it through the same
                    // cursor as any message, and a visitor never sees it.
                    let body = describe_labels(&actor_name, &diff);
                    messages::insert_event(db, &id, "labeled", body, Some(actor.clone()), true)?;
                    changed = true;
                }
                if let Some(status) = change.status.filter(|s| *s != access.status) {
                    chats::set_status(db, &id, status, &domain::now())?;
                    let (event, body) = match status {
                        ChatStatus::Closed => ("closed", format!("Chat closed by {actor_name}")),
                        ChatStatus::Open => ("reopened", format!("Chat reopened by {actor_name}")),
                    };
                    let message =
                        messages::insert_event(db, &id, event, body, Some(actor.clone()), false)?;
                    if status == ChatStatus::Closed {
                        hooks.chat_closed(db, &message)?;
                    }
                    changed = true;
                }
                if let Some(assignee_id) = change.assignee_id {
                    let current = chats::find(db, &id)?
                        .ok_or(DomainError::NotFound)?
                        .assignee
                        .map(|a| a.id);
                    if current != assignee_id {
                        let body = match assignee_id.as_deref() {
                            Some(new_id) => {
                                let assignee = agents::find(db, new_id)?
                                    .filter(|a| !a.disabled)
                                    .ok_or_else(|| {
                                        DomainError::invalid("assignee_id is not an active agent")
                                    })?;
                                format!("Assigned to {} by {actor_name}", assignee.name)
                            }
                            None => format!("Unassigned by {actor_name}"),
                        };
                        chats::set_assignee(db, &id, assignee_id.as_deref())?;
                        messages::insert_event(
                            db,
                            &id,
                            "assigned",
                            body,
                            Some(actor.clone()),
                            false,
                        )?;
                        if let (Some(note), Some(subscribers)) = (change.note, &subscribers) {
                            let note = messages::insert(
                                db,
                                NewMessage {
                                    id: domain::new_id(),
                                    chat_id: &id,
                                    sender: Sender::Agent,
                                    author: Some(actor),
                                    body: note.into_inner(),
                                    client_id: None,
                                    event: None,
                                    created_at: domain::now(),
                                    attachment: None,
                                    private: true,
                                },
                            )?;
                            hooks.message_created_to(db, subscribers, &note)?;
                            mentions::record(db, &note, &actor_id, &mail)?;
                        }
                        changed = true;
                    }
                }
                let chat = chats::find(db, &id)?.ok_or(DomainError::NotFound)?;
                if changed {
                    bus.message_committed(db, &id, chat.last_seq)?;
                }
                Ok((chat, changed))
            })
            .await?;
        if changed {
            self.hub.message_added(&chat_id, chat.last_seq, None);
            self.webhooks.wake();
            self.mail.wake();
        }
        Ok(chat)
    }

    /// The chat's visitor rates it, once, after it was closed. The rating counts for the
    /// chat's assignee at this moment. A chat still open, or rated already: `Conflict`.
    pub async fn rate(
        &self,
        caller: &Caller,
        chat_id: String,
        rating: NewRating,
    ) -> Result<Rating, DomainError> {
        caller.require_visitor()?;
        let caller = caller.clone();
        self.store
            .write(move |db| {
                let access = visible_chat(db, &chat_id, &caller)?;
                if access.status != ChatStatus::Closed {
                    return Err(DomainError::Conflict(
                        "a chat can be rated once it is closed".into(),
                    ));
                }
                let chat = chats::find_bare(db, &chat_id)?.ok_or(DomainError::NotFound)?;
                let assignee = chat.assignee.map(|a| a.id);
                if !ratings::insert(db, &chat_id, &rating, assignee.as_deref(), &domain::now())? {
                    return Err(DomainError::Conflict("this chat is rated already".into()));
                }
                Ok(Rating {
                    rating: rating.rating,
                    comment: rating.comment,
                })
            })
            .await
    }

    /// The agents' inbox poll: the chats with a message whose `seq > after`, most recent
    /// first; held up to `wait` until any chat changes. A revoked token's poll ends with
    /// `Unauthorized`.
    ///
    /// Not an `async fn`, for the reason given at [`Hub::park`].
    #[allow(clippy::manual_async_fn, reason = "an async fn copies its arguments")]
    pub fn inbox<'a>(
        &'a self,
        caller: &'a Caller,
        after: i64,
        limit: usize,
        wait: Duration,
        slot: &'a PollSlot,
    ) -> impl Future<Output = Result<InboxAnswer, DomainError>> + 'a {
        async move {
            caller.require_agent()?;
            let wait = if self.hub.is_shutting_down() {
                Duration::ZERO
            } else {
                wait
            };
            let read = || async {
                let found = self.changed_since(caller.id(), after, limit).await?;
                Ok::<_, DomainError>((!found.is_empty()).then_some(found))
            };
            let deadline = tokio::time::Instant::now() + wait;
            let chats = loop {
                let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
                let woken = match self.hub.park(Watch::Inbox, slot, remaining, read).await? {
                    Parked::Ready(chats) => break chats,
                    Parked::HandedOver(_) => Woken::Change,
                    Parked::Woken(woken) => woken,
                };
                match woken {
                    Woken::Revoked => return Err(DomainError::Unauthorized),
                    Woken::Timeout if wait.is_zero() => break Vec::new(),
                    Woken::Change => {
                        let found = self.changed_since(caller.id(), after, limit).await?;
                        // A wake with nothing new after the cursor (another instance's
                        // listener reconnecting wakes every poll) waits on, as the check
                        // before the next wait is made with the waiter registered.
                        if !found.is_empty()
                            || self.hub.is_shutting_down()
                            || tokio::time::Instant::now() >= deadline
                        {
                            break found;
                        }
                    }
                    _ => break self.changed_since(caller.id(), after, limit).await?,
                }
            };
            let next = chats.iter().map(|c| c.last_seq).max().unwrap_or(after);
            Ok(InboxAnswer { chats, next })
        }
    }

    /// Boxed for the reason given at `MessageService::read_page`.
    fn changed_since(
        &self,
        agent_id: &str,
        after: i64,
        limit: usize,
    ) -> LocalBoxFuture<'_, Result<Vec<Chat>, DomainError>> {
        let agent_id = agent_id.to_string();
        Box::pin(self.store.read(move |db| {
            let mut found = chats::changed_since(db, after, limit)?;
            mentions::flag(db, &agent_id, &mut found)?;
            Ok(found)
        }))
    }
}

/// The body of a `labeled` event: "Ana added billing, vip and removed urgent".
fn describe_labels(actor_name: &str, diff: &chats::LabelDiff) -> String {
    let added = (!diff.added.is_empty()).then(|| format!("added {}", diff.added.join(", ")));
    let removed =
        (!diff.removed.is_empty()).then(|| format!("removed {}", diff.removed.join(", ")));
    let what: Vec<String> = added.into_iter().chain(removed).collect();
    format!("{actor_name} {}", what.join(" and "))
}

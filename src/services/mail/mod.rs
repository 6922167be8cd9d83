//! Email: notifications of unread messages (to the agents, and to visitors who left an
//! email), transcripts on request, the signed links they carry, and the durable outbox.
//!
//! The path of a notification, and what makes it safe:
//! - the transaction that commits a message also *schedules* a look at its chat's other
//!   side, `notify-after` from now ([`Mail::schedule_notification`]; one row per chat and
//!   side, so a burst of messages is one notification);
//! - when due, the worker reads the read markers in one write transaction and, if messages
//!   are still unread, queues the mail in the outbox *in that same transaction* (and
//!   records what it carried, so no message is mailed twice) — see [`Mail::settle_due`];
//! - the sender claims queued mail with a lease (on PostgreSQL `FOR UPDATE SKIP LOCKED`,
//!   so instances share the outbox without sending a mail twice), sends it, retries with
//!   capped exponential back-off while the SMTP server fails, and marks it sent.
//!
//! Exactly once, as far as SMTP allows: a mail is marked sent in the transaction after the
//! SMTP server accepted it. The one window left is a crash (or `kill -9`) after the server
//! said `250` and before that commit: the mail is then sent again after the restart. Every
//! other crash leaves it queued, and it goes out once.

pub mod compose;
pub mod links;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use rand::RngCore;
use tokio::sync::Notify;

use crate::config::Config;
use crate::domain::{self, Agent, Caller, ChatStatus, DomainError, Message, Sender, Visitor};
use crate::metrics;
use crate::services::access::visible_chat;
use crate::services::auth::new_token;
use crate::services::limits::Limits;
use crate::services::retry::{millis, now_ms};
use crate::store::mail::{self as outbox, MailStatus, NewMail, Schedule, Side};
use crate::store::messages::{self, Shown};
use crate::store::{chats, tokens, visitors, Db, Store};
use links::{LinkError, Purpose, Signer};

pub use worker::start_worker;

/// Mail kinds, as the outbox and the admins' list name them.
pub const AGENT_NOTIFICATION: &str = "agent_notification";
pub const VISITOR_NOTIFICATION: &str = "visitor_notification";
pub const TRANSCRIPT: &str = "transcript";

/// Pending mail beyond which new mail is dropped (and counted), so an SMTP server down for
/// days cannot grow the database without end.
pub const MAX_PENDING: i64 = 10_000;
/// Notifications per chat and side in one hour, at most.
pub const MAX_PER_CHAT_HOUR: i64 = 6;
const HOUR_MS: i64 = 60 * 60 * 1000;
/// Schedule rows settled per write transaction.
const SETTLE_BATCH: usize = 50;
/// Messages read for one notification (the mail quotes the newest of them).
const READ_MESSAGES: usize = 200;

/// The settings email needs, checked at startup.
#[derive(Clone)]
pub struct MailSettings {
    /// The SMTP URL as lettre reads it (`tls=none` turned into lettre's plain `smtp://`).
    pub smtp_url: String,
    pub from: Mailbox,
    /// Without a trailing slash.
    pub public_url: String,
    pub notify_after: Duration,
    pub retry_base: Duration,
}

impl MailSettings {
    /// The settings of `config`, or `None` when it names no SMTP server. `port` is the one
    /// the server listens on (`--addr` may say 0), for the default public URL.
    pub fn from_config(config: &Config, port: u16) -> Result<Option<Self>, DomainError> {
        let Some(raw) = &config.smtp_url else {
            return Ok(None);
        };
        let smtp_url = smtp_url_for_lettre(raw)?;
        let public_url = public_url(config, port)?;
        let from = match &config.mail_from {
            Some(from) => from
                .parse::<Mailbox>()
                .map_err(|e| DomainError::invalid(format!("--mail-from: {e}")))?,
            None => {
                let host = reqwest::Url::parse(&public_url)
                    .ok()
                    .and_then(|u| u.domain().map(str::to_string))
                    .unwrap_or_else(|| "localhost".into());
                format!("Parley <parley@{host}>")
                    .parse::<Mailbox>()
                    .map_err(|e| DomainError::invalid(format!("--mail-from: {e}")))?
            }
        };
        Ok(Some(Self {
            smtp_url,
            from,
            public_url,
            notify_after: Duration::from_secs(config.notify_after),
            retry_base: Duration::from_millis(config.mail_retry_base_ms.max(1)),
        }))
    }
}

/// `smtp://` or `smtps://` with a host; `tls` one of `required`, `opportunistic` (the
/// default for `smtp://`) or `none`, which lettre spells as no `tls` at all.
fn smtp_url_for_lettre(raw: &str) -> Result<String, DomainError> {
    let bad = |why: &str| DomainError::invalid(format!("--smtp-url: {why}"));
    let mut url = reqwest::Url::parse(raw).map_err(|_| bad("not a URL"))?;
    if !matches!(url.scheme(), "smtp" | "smtps") || url.host_str().is_none() {
        return Err(bad("must be smtp://host:port or smtps://host:port"));
    }
    let mut tls = None;
    let mut others = Vec::new();
    for (key, value) in url.query_pairs() {
        if key == "tls" {
            tls = Some(value.into_owned());
        } else {
            others.push((key.into_owned(), value.into_owned()));
        }
    }
    let tls = match (url.scheme(), tls.as_deref()) {
        ("smtps", _) => None,
        (_, None | Some("opportunistic")) => Some("opportunistic"),
        (_, Some("required")) => Some("required"),
        (_, Some("none")) => None,
        _ => return Err(bad("tls must be required, opportunistic or none")),
    };
    url.set_query(None);
    if tls.is_some() || !others.is_empty() {
        let mut query = url.query_pairs_mut();
        for (key, value) in &others {
            query.append_pair(key, value);
        }
        if let Some(tls) = tls {
            query.append_pair("tls", tls);
        }
    }
    Ok(url.to_string())
}

fn public_url(config: &Config, port: u16) -> Result<String, DomainError> {
    let raw = config.public_url.clone().unwrap_or_else(|| {
        let host = config.addr.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
        format!("http://{host}:{port}")
    });
    let parsed = reqwest::Url::parse(&raw)
        .map_err(|_| DomainError::invalid("--public-url must be an http(s) URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(DomainError::invalid("--public-url must be an http(s) URL"));
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// Shared handle: schedules and queues mail inside write transactions, signs links, wakes
/// the worker. Cheap to clone.
#[derive(Clone)]
pub struct Mail {
    inner: Arc<Inner>,
}

struct Inner {
    /// `None`: no SMTP server, so nothing is scheduled or queued (links still verify).
    settings: Option<MailSettings>,
    signer: Signer,
    /// `notify_one` keeps a permit, so a wake given while the worker is busy is not lost.
    wake: Notify,
}

impl Mail {
    /// The handle for `config` (serving on `port`), with the signing key every instance on the database shares
    /// (made by the first one).
    pub async fn load(store: &Store, config: &Config, port: u16) -> Result<Self, DomainError> {
        let settings = MailSettings::from_config(config, port)?;
        let mut fresh = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut fresh);
        let fresh = hex::encode(fresh);
        let key = store
            .write(move |db| Ok(outbox::secret(db, "mail_links", &fresh)?))
            .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                signer: Signer::new(key.as_bytes()),
                wake: Notify::new(),
            }),
        })
    }

    /// Whether mail is sent at all.
    pub fn enabled(&self) -> bool {
        self.inner.settings.is_some()
    }

    fn settings(&self) -> Option<&MailSettings> {
        self.inner.settings.as_ref()
    }

    /// Tells the worker that mail may be waiting. Call after the commit.
    pub fn wake(&self) {
        if self.enabled() {
            self.inner.wake.notify_one();
        }
    }

    /// Call inside the write job that commits a message by `sender` to `chat_id`:
    /// schedules the look at the other side's read marker `notify-after` from now. Private
    /// notes schedule nothing; without SMTP this costs no query. Call it before the message's
    /// insert: on PostgreSQL that insert holds the message seq lock until the commit, and
    /// the schedule row may be briefly locked by a worker settling it.
    pub fn schedule_notification(
        &self,
        db: &Db,
        chat_id: &str,
        sender: Sender,
        private: bool,
    ) -> Result<(), DomainError> {
        let Some(settings) = self.settings() else {
            return Ok(());
        };
        let side = match sender {
            _ if private => return Ok(()),
            Sender::Visitor => Side::Agents,
            Sender::Agent => Side::Visitor,
            Sender::System => return Ok(()),
        };
        let due = now_ms().saturating_add(millis(settings.notify_after));
        outbox::schedule(db, chat_id, side, due)?;
        Ok(())
    }

    /// Queues a mail to an agent inside the caller's write transaction (then call
    /// [`Mail::wake`] after the commit). Returns whether it was queued: not without SMTP,
    /// nor to a disabled agent, nor when the outbox is full. For @mentions and the like
    /// (`kind` names them in the admins' list; build `mail` with [`compose`]'s escaping);
    /// the caller decides whether `email_notifications` applies.
    pub fn queue_to_agent(
        &self,
        db: &Db,
        agent: &Agent,
        kind: &str,
        chat_id: Option<&str>,
        mail: &compose::Composed,
    ) -> Result<bool, DomainError> {
        if agent.disabled {
            return Ok(false);
        }
        self.queue(
            db,
            &NewMail {
                id: &domain::new_id(),
                kind,
                recipient: &agent.email,
                chat_id,
                visitor_id: None,
                subject: &mail.subject,
                text_body: &mail.text,
                html_body: &mail.html,
                unsubscribe_url: None,
                enqueued_at: now_ms(),
            },
        )
    }

    /// Queues the mail that tells `agent` a colleague's note mentions it, inside the note's
    /// write transaction (then [`Mail::wake`]). Not to an agent that turned its email
    /// notifications off.
    pub fn queue_mention(
        &self,
        db: &Db,
        agent: &Agent,
        note: &Message,
        visitor_name: Option<&str>,
    ) -> Result<bool, DomainError> {
        if !self.enabled() || !agent.email_notifications {
            return Ok(false);
        }
        let author = note
            .author
            .as_ref()
            .and_then(|a| a.name.clone())
            .unwrap_or_else(|| "A colleague".into());
        let visitor = compose::visitor_label(visitor_name);
        let inbox_url = format!("{}/agent#chat={}", self.public_base(), note.chat_id);
        let mail = compose::mention(&author, &visitor, note, &inbox_url);
        self.queue_to_agent(db, agent, "mention", Some(&note.chat_id), &mail)
    }

    /// Puts one mail in the outbox, unless mail is off or the outbox is full.
    fn queue(&self, db: &Db, mail: &NewMail) -> Result<bool, DomainError> {
        if !self.enabled() {
            return Ok(false);
        }
        if outbox::count_pending(db)? >= MAX_PENDING {
            metrics::mail("dropped");
            log::warn!(
                "the mail outbox holds {MAX_PENDING} unsent mails: a {} mail was dropped",
                mail.kind
            );
            return Ok(false);
        }
        outbox::insert(db, mail)?;
        metrics::mail("queued");
        Ok(true)
    }

    /// The link that opens a visitor's chat in any browser, valid for 7 days from `now_s`.
    pub fn continue_url(&self, visitor_id: &str, chat_id: &str, now_s: i64) -> String {
        let token = self.inner.signer.sign(
            Purpose::Continue,
            visitor_id,
            now_s + links::CONTINUE_FOR_SECS,
        );
        format!("{}/?continue={token}&chat={chat_id}", self.public_base())
    }

    /// The one-click unsubscribe link of a visitor's mail.
    pub fn unsubscribe_url(&self, visitor_id: &str, now_s: i64) -> String {
        let token = self.inner.signer.sign(
            Purpose::Unsubscribe,
            visitor_id,
            now_s + links::UNSUBSCRIBE_FOR_SECS,
        );
        format!("{}/api/v1/unsubscribe?token={token}", self.public_base())
    }

    fn public_base(&self) -> &str {
        self.settings().map_or("", |s| s.public_url.as_str())
    }

    /// Settles the schedule rows due at `now`, at most a batch, in the caller's write job:
    /// each still-unread side becomes mail in the outbox. Returns how many mails were
    /// queued and when the next row is due.
    pub fn settle_due(&self, db: &Db, now: i64) -> Result<(usize, Option<i64>), DomainError> {
        let mut queued = 0;
        for row in outbox::due(db, now, SETTLE_BATCH)? {
            queued += self.settle(db, row, now)?;
        }
        Ok((queued, outbox::next_due(db)?))
    }

    fn settle(&self, db: &Db, mut row: Schedule, now: i64) -> Result<usize, DomainError> {
        let Some(chat) = chats::find_bare(db, &row.chat_id)? else {
            return Ok(0);
        };
        if now.saturating_sub(row.hour_start) >= HOUR_MS {
            row.hour_start = now;
            row.hour_count = 0;
        }
        if row.hour_count >= MAX_PER_CHAT_HOUR {
            // Looked at again when the hour is over, with everything still unread then.
            outbox::settle(db, &row, Some(row.hour_start + HOUR_MS))?;
            return Ok(0);
        }
        let (read, wanted) = match row.side {
            Side::Agents => (chat.read.agent, Sender::Visitor),
            Side::Visitor => (chat.read.visitor, Sender::Agent),
            Side::Transcript => {
                outbox::settle(db, &row, None)?;
                return Ok(0);
            }
        };
        let after = read.max(row.notified_seq);
        // Visitors' mail never shows a private note: only public messages are read.
        let page = messages::after(db, &chat.id, after, READ_MESSAGES, Shown::Public)?;
        if let Some(last) = page.messages.last() {
            row.notified_seq = last.seq;
        }
        let unread: Vec<Message> = page
            .messages
            .into_iter()
            .filter(|m| m.sender == wanted && m.event.is_none() && !m.private)
            .collect();
        let mut queued = 0;
        if !unread.is_empty() {
            queued = match row.side {
                Side::Agents => self.queue_agent_notification(db, &chat, &unread)?,
                _ => self.queue_visitor_notification(db, &chat.id, &chat.visitor, &unread, now)?,
            };
        }
        if queued > 0 {
            row.hour_count += 1;
        }
        outbox::settle(db, &row, None)?;
        Ok(queued)
    }

    fn queue_agent_notification(
        &self,
        db: &Db,
        chat: &domain::Chat,
        unread: &[Message],
    ) -> Result<usize, DomainError> {
        let assignee = chat.assignee.as_ref().map(|a| a.id.as_str());
        let recipients = outbox::recipients(db, assignee)?;
        if recipients.is_empty() {
            return Ok(0);
        }
        let visitor = compose::visitor_label(chat.visitor.name.as_deref());
        let inbox_url = format!("{}/agent#chat={}", self.public_base(), chat.id);
        let mail = compose::agent_notification(&visitor, unread, &inbox_url);
        let mut queued = 0;
        for agent in recipients {
            if self.queue_to_agent(db, &agent, AGENT_NOTIFICATION, Some(&chat.id), &mail)? {
                queued += 1;
            }
        }
        Ok(queued)
    }

    fn queue_visitor_notification(
        &self,
        db: &Db,
        chat_id: &str,
        visitor: &Visitor,
        unread: &[Message],
        now: i64,
    ) -> Result<usize, DomainError> {
        let Some(email) = &visitor.email else {
            return Ok(0);
        };
        if outbox::visitor_opted_out(db, &visitor.id)? {
            return Ok(0);
        }
        let now_s = now / 1000;
        let continue_url = self.continue_url(&visitor.id, chat_id, now_s);
        let unsubscribe_url = self.unsubscribe_url(&visitor.id, now_s);
        let mail = compose::visitor_notification(unread, &continue_url, &unsubscribe_url);
        let new = NewMail {
            id: &domain::new_id(),
            kind: VISITOR_NOTIFICATION,
            recipient: email,
            chat_id: Some(chat_id),
            visitor_id: Some(&visitor.id),
            subject: &mail.subject,
            text_body: &mail.text,
            html_body: &mail.html,
            unsubscribe_url: Some(&unsubscribe_url),
            enqueued_at: now,
        };
        Ok(usize::from(self.queue(db, &new)?))
    }
}

/// A redeemed continuity link: the visitor and a fresh token for it.
pub struct Continued {
    pub visitor: Visitor,
    pub token: String,
}

/// The email routes' rules: continuity links, unsubscribing, transcripts, the outbox list.
#[derive(Clone)]
pub struct MailService {
    store: Store,
    mail: Mail,
    limits: Arc<Limits>,
}

impl MailService {
    pub fn new(store: Store, mail: Mail, limits: Arc<Limits>) -> Self {
        Self {
            store,
            mail,
            limits,
        }
    }

    /// Redeems a continuity link (the whole URL or its `continue` value): a new token for
    /// the visitor it names. A tampered, expired or unknown one is `Forbidden`.
    pub async fn continue_visitor(
        &self,
        ip: std::net::IpAddr,
        link: &str,
    ) -> Result<Continued, DomainError> {
        // It issues a token, as making a visitor does: the same limit.
        self.limits.check_new_visitor(ip)?;
        let token = continue_token(link);
        let now_s = now_ms() / 1000;
        let visitor_id = self
            .mail
            .inner
            .signer
            .verify(Purpose::Continue, &token, now_s)
            .map_err(refused)?;
        let fresh = new_token("visitor");
        let hash = fresh.hash;
        let visitor = self
            .store
            .write(move |db| {
                let visitor = visitors::find(db, &visitor_id)?
                    .ok_or(DomainError::Forbidden("this link is no longer valid"))?;
                tokens::insert(db, &hash, "visitor", &visitor.id, &domain::now(), None)?;
                Ok(visitor)
            })
            .await?;
        Ok(Continued {
            visitor,
            token: fresh.token,
        })
    }

    /// Turns off the email of the visitor an unsubscribe token names.
    pub async fn unsubscribe(&self, token: &str) -> Result<(), DomainError> {
        let visitor_id = self.check_unsubscribe(token)?;
        self.store
            .write(move |db| {
                outbox::opt_out_visitor(db, &visitor_id)?;
                Ok(())
            })
            .await
    }

    /// The visitor an unsubscribe token names; `Forbidden` for a tampered or expired one.
    /// Changes nothing: the confirm page checks the link before it offers the button.
    pub fn check_unsubscribe(&self, token: &str) -> Result<String, DomainError> {
        self.mail
            .inner
            .signer
            .verify(Purpose::Unsubscribe, token, now_ms() / 1000)
            .map_err(refused)
    }

    /// Emails a closed chat's transcript (without private notes) to its visitor; asked for
    /// by the visitor or an agent. Once per chat, until new messages arrive.
    pub async fn send_transcript(
        &self,
        caller: Caller,
        chat_id: String,
    ) -> Result<(), DomainError> {
        let mail = self.mail.clone();
        self.store
            .write(move |db| {
                let access = visible_chat(db, &chat_id, &caller)?;
                if !mail.enabled() {
                    return Err(DomainError::Conflict("this server sends no email".into()));
                }
                if access.status != ChatStatus::Closed {
                    return Err(DomainError::Conflict(
                        "the chat is open: a transcript is sent once it is closed".into(),
                    ));
                }
                let chat = chats::find_bare(db, &chat_id)?.ok_or(DomainError::NotFound)?;
                let Some(email) = chat.visitor.email.clone() else {
                    return Err(DomainError::invalid("the visitor has no email address"));
                };
                let mut row =
                    outbox::find_schedule(db, &chat_id, Side::Transcript)?.unwrap_or(Schedule {
                        chat_id: chat_id.clone(),
                        side: Side::Transcript,
                        notified_seq: 0,
                        hour_start: 0,
                        hour_count: 0,
                    });
                if row.notified_seq >= chat.last_seq {
                    return Err(DomainError::Conflict(
                        "the transcript of this chat was sent already".into(),
                    ));
                }
                let all: Vec<Message> = crate::store::messages::all_of_chat(db, &chat_id)?
                    .into_iter()
                    .filter(|m| !m.private)
                    .collect();
                let now = now_ms();
                let unsubscribe_url = mail.unsubscribe_url(&chat.visitor.id, now / 1000);
                let composed = compose::transcript(&all, &chat.created_at, &unsubscribe_url);
                let queued = mail.queue(
                    db,
                    &NewMail {
                        id: &domain::new_id(),
                        kind: TRANSCRIPT,
                        recipient: &email,
                        chat_id: Some(&chat_id),
                        visitor_id: Some(&chat.visitor.id),
                        subject: &composed.subject,
                        text_body: &composed.text,
                        html_body: &composed.html,
                        unsubscribe_url: Some(&unsubscribe_url),
                        enqueued_at: now,
                    },
                )?;
                if !queued {
                    return Err(DomainError::Unavailable);
                }
                row.notified_seq = chat.last_seq;
                outbox::settle(db, &row, None)?;
                Ok(())
            })
            .await?;
        self.mail.wake();
        Ok(())
    }

    /// The newest mails of the outbox, with their status (admins).
    pub async fn recent(
        &self,
        caller: &Caller,
        limit: usize,
    ) -> Result<Vec<MailStatus>, DomainError> {
        caller.require_admin()?;
        self.store
            .read(move |db| Ok(outbox::recent(db, limit)?))
            .await
    }
}

/// The token in a continuity link: the `continue` parameter of a URL, or the link itself.
fn continue_token(link: &str) -> String {
    let link = link.trim();
    if let Ok(url) = reqwest::Url::parse(link) {
        if let Some((_, token)) = url.query_pairs().find(|(k, _)| k == "continue") {
            return token.into_owned();
        }
    }
    link.to_string()
}

fn refused(error: LinkError) -> DomainError {
    DomainError::Forbidden(match error {
        LinkError::Expired => "this link has expired",
        LinkError::Malformed | LinkError::BadSignature => "this link is not valid",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_take_the_three_tls_modes_and_nothing_else() {
        let url = |raw: &str| smtp_url_for_lettre(raw);
        assert_eq!(
            url("smtp://127.0.0.1:2525?tls=none").unwrap(),
            "smtp://127.0.0.1:2525"
        );
        assert_eq!(
            url("smtp://u:p@mail.example.com:587").unwrap(),
            "smtp://u:p@mail.example.com:587?tls=opportunistic"
        );
        assert_eq!(
            url("smtp://mail.example.com?tls=required").unwrap(),
            "smtp://mail.example.com?tls=required"
        );
        assert!(url("smtps://mail.example.com").is_ok());
        for bad in [
            "http://x",
            "smtp://x?tls=maybe",
            "not a url",
            "smtp:///nohost",
        ] {
            assert!(url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_continuity_link_is_read_from_a_url_or_alone() {
        assert_eq!(
            continue_token("https://chat.example.com/?continue=v.1.ab&chat=c"),
            "v.1.ab"
        );
        assert_eq!(continue_token(" v.1.ab "), "v.1.ab");
    }
}

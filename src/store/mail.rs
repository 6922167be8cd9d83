//! Queries on email: the shared signing secret, the per-chat notification schedule, the
//! durable outbox and who gets what.
//!
//! Times are unix milliseconds. On PostgreSQL several instances share the work: the
//! schedule's due rows and the outbox's due mail are claimed with `FOR UPDATE SKIP LOCKED`,
//! so no two instances take the same row.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Agent;
use crate::store::agents;
use crate::store::sql::{Backend, Db, DbResult, Row};

/// The server's secret called `name`, made from `fresh` by the first instance that asks
/// (every later call, on any instance, gets that same one).
pub fn secret(db: &Db, name: &str, fresh: &str) -> DbResult<String> {
    db.execute(
        "INSERT INTO server_secrets (name, value) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        &[&name, &fresh],
    )?;
    db.query_row(
        "SELECT value FROM server_secrets WHERE name = ?1",
        &[&name],
        |r| r.get(0),
    )
}

/// Which side of a chat a notification goes to, or the transcript's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Agents,
    Visitor,
    Transcript,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Agents => "agents",
            Side::Visitor => "visitor",
            Side::Transcript => "transcript",
        }
    }

    fn parse(raw: &str) -> Self {
        match raw {
            "agents" => Side::Agents,
            "visitor" => Side::Visitor,
            _ => Side::Transcript,
        }
    }
}

/// Asks for a look at a chat's side at `due_at`, unless one is asked for already (then
/// the earlier time stands: the oldest unread message sets it).
pub fn schedule(db: &Db, chat_id: &str, side: Side, due_at: i64) -> DbResult<()> {
    db.execute(
        "INSERT INTO mail_schedule (chat_id, side, due_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (chat_id, side)
         DO UPDATE SET due_at = COALESCE(mail_schedule.due_at, excluded.due_at)",
        &[&chat_id, &side.as_str(), &due_at],
    )?;
    Ok(())
}

/// A chat side's schedule row, as the worker sees it when it is due.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub chat_id: String,
    pub side: Side,
    /// The last message a notification of this side already carried.
    pub notified_seq: i64,
    pub hour_start: i64,
    pub hour_count: i64,
}

fn schedule_from_row(row: &Row) -> DbResult<Schedule> {
    Ok(Schedule {
        chat_id: row.get(0)?,
        side: Side::parse(&row.get::<String>(1)?),
        notified_seq: row.get(2)?,
        hour_start: row.get(3)?,
        hour_count: row.get(4)?,
    })
}

/// Up to `limit` schedule rows due at `now`, soonest first. On PostgreSQL they stay locked
/// by this transaction and rows another instance holds are skipped: call it in the write job
/// that settles them.
pub fn due(db: &Db, now: i64, limit: usize) -> DbResult<Vec<Schedule>> {
    let lock = match db.backend() {
        Backend::Sqlite => "",
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
    };
    db.query_map(
        &format!(
            "SELECT chat_id, side, notified_seq, hour_start, hour_count FROM mail_schedule
             WHERE due_at IS NOT NULL AND due_at <= ?1
             ORDER BY due_at LIMIT ?2 {lock}"
        ),
        &[&now, &(limit as i64)],
        schedule_from_row,
    )
}

/// The row of one chat side, if any (`FOR UPDATE` on PostgreSQL).
pub fn find_schedule(db: &Db, chat_id: &str, side: Side) -> DbResult<Option<Schedule>> {
    let lock = match db.backend() {
        Backend::Sqlite => "",
        Backend::Postgres => "FOR UPDATE",
    };
    db.query_opt(
        &format!(
            "SELECT chat_id, side, notified_seq, hour_start, hour_count FROM mail_schedule
             WHERE chat_id = ?1 AND side = ?2 {lock}"
        ),
        &[&chat_id, &side.as_str()],
        schedule_from_row,
    )
}

/// The soonest time any schedule row is due, to know when to look again.
pub fn next_due(db: &Db) -> DbResult<Option<i64>> {
    db.query_row(
        "SELECT MIN(due_at) FROM mail_schedule WHERE due_at IS NOT NULL",
        &[],
        |r| r.get(0),
    )
}

/// Records what the worker decided for a due row: `due_at` again (postponed by the hourly
/// cap) or `None`, and what was mailed.
pub fn settle(db: &Db, row: &Schedule, due_at: Option<i64>) -> DbResult<()> {
    db.execute(
        "INSERT INTO mail_schedule (chat_id, side, due_at, notified_seq, hour_start, hour_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (chat_id, side) DO UPDATE SET due_at = excluded.due_at,
             notified_seq = excluded.notified_seq, hour_start = excluded.hour_start,
             hour_count = excluded.hour_count",
        &[
            &row.chat_id,
            &row.side.as_str(),
            &due_at,
            &row.notified_seq,
            &row.hour_start,
            &row.hour_count,
        ],
    )?;
    Ok(())
}

/// The agents who get mail about a chat: its assignee if it has one, else every agent;
/// only those not disabled and with notifications on.
pub fn recipients(db: &Db, assignee_id: Option<&str>) -> DbResult<Vec<Agent>> {
    let sql = format!(
        "SELECT {} FROM agents a
         WHERE NOT a.disabled AND a.email_notifications
           AND (CAST(?1 AS TEXT) IS NULL OR a.id = ?1)
         ORDER BY a.email",
        agents::COLUMNS
    );
    db.query_map(&sql, &[&assignee_id], |row| agents::from_row(row, 0))
}

/// Whether the visitor turned email off (an unsubscribe link).
pub fn visitor_opted_out(db: &Db, visitor_id: &str) -> DbResult<bool> {
    Ok(db
        .query_opt(
            "SELECT mail_opt_out FROM visitors WHERE id = ?1",
            &[&visitor_id],
            |r| r.get::<bool>(0),
        )?
        .unwrap_or(true))
}

/// Turns a visitor's email off. Returns whether the visitor exists.
pub fn opt_out_visitor(db: &Db, visitor_id: &str) -> DbResult<bool> {
    Ok(db.execute(
        "UPDATE visitors SET mail_opt_out = ?2 WHERE id = ?1",
        &[&visitor_id, &true],
    )? == 1)
}

/// One mail as it is queued.
pub struct NewMail<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub recipient: &'a str,
    pub chat_id: Option<&'a str>,
    pub visitor_id: Option<&'a str>,
    pub subject: &'a str,
    pub text_body: &'a str,
    pub html_body: &'a str,
    pub unsubscribe_url: Option<&'a str>,
    /// Also the first attempt's time.
    pub enqueued_at: i64,
}

pub fn insert(db: &Db, mail: &NewMail) -> DbResult<()> {
    db.execute(
        "INSERT INTO mail_outbox (id, kind, recipient, chat_id, visitor_id, subject, text_body,
                                  html_body, unsubscribe_url, enqueued_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        &[
            &mail.id,
            &mail.kind,
            &mail.recipient,
            &mail.chat_id,
            &mail.visitor_id,
            &mail.subject,
            &mail.text_body,
            &mail.html_body,
            &mail.unsubscribe_url,
            &mail.enqueued_at,
        ],
    )?;
    Ok(())
}

/// Mail not yet sent nor given up.
pub fn count_pending(db: &Db) -> DbResult<i64> {
    db.query_row(
        "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        &[],
        |r| r.get(0),
    )
}

/// A queued mail as the sender takes it.
#[derive(Debug, Clone)]
pub struct Pending {
    pub seq: i64,
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub unsubscribe_url: Option<String>,
    pub enqueued_at: i64,
    pub attempts: i64,
}

/// Takes up to `limit` mails due at `now`, soonest first, and leases each until
/// `lease_until` by moving its `next_attempt_at` there: a mail being sent is not due, so
/// no other sender (another instance's on PostgreSQL, which skips rows being claimed)
/// takes it. A sender that dies mid-send leaves its lease to run out; the mail is then due
/// again. Recording the outcome (`mark_*`) replaces the lease.
pub fn claim(db: &Db, now: i64, lease_until: i64, limit: usize) -> DbResult<Vec<Pending>> {
    let lock = match db.backend() {
        Backend::Sqlite => "",
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
    };
    let mut claimed = db.query_map(
        &format!(
            // MATERIALIZED: the locking subquery runs once, never re-planned into the UPDATE.
            "WITH claimed AS MATERIALIZED (
                 SELECT seq FROM mail_outbox
                 WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, seq LIMIT ?3 {lock})
             UPDATE mail_outbox SET next_attempt_at = ?2
             WHERE seq IN (SELECT seq FROM claimed)
             RETURNING seq, id, recipient, subject, text_body, html_body, unsubscribe_url,
                       enqueued_at, attempts"
        ),
        &[&now, &lease_until, &(limit as i64)],
        |row| {
            Ok(Pending {
                seq: row.get(0)?,
                id: row.get(1)?,
                recipient: row.get(2)?,
                subject: row.get(3)?,
                text_body: row.get(4)?,
                html_body: row.get(5)?,
                unsubscribe_url: row.get(6)?,
                enqueued_at: row.get(7)?,
                attempts: row.get(8)?,
            })
        },
    )?;
    // RETURNING comes in no particular order.
    claimed.sort_by_key(|m| m.seq);
    Ok(claimed)
}

/// The soonest `next_attempt_at` among pending mail (a retry, or a lease), if any.
pub fn next_attempt(db: &Db) -> DbResult<Option<i64>> {
    db.query_row(
        "SELECT MIN(next_attempt_at) FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        &[],
        |r| r.get(0),
    )
}

/// SQLite only (one instance, so no lease is another sender's): makes every pending mail
/// due now, for a restart after a crash not to wait out the leases it left.
pub fn release_leases(db: &Db, now: i64) -> DbResult<usize> {
    db.execute(
        "UPDATE mail_outbox SET next_attempt_at = ?1
         WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at > ?1",
        &[&now],
    )
}

pub fn mark_sent(db: &Db, seq: i64, attempts: i64, at: i64) -> DbResult<()> {
    db.execute(
        "UPDATE mail_outbox SET sent_at = ?2, attempts = ?3, last_error = NULL WHERE seq = ?1",
        &[&seq, &at, &attempts],
    )?;
    Ok(())
}

pub fn mark_retry(db: &Db, seq: i64, attempts: i64, next: i64, error: &str) -> DbResult<()> {
    db.execute(
        "UPDATE mail_outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4
         WHERE seq = ?1",
        &[&seq, &attempts, &next, &error],
    )?;
    Ok(())
}

pub fn mark_failed(db: &Db, seq: i64, attempts: i64, at: i64, error: &str) -> DbResult<()> {
    db.execute(
        "UPDATE mail_outbox SET failed_at = ?2, attempts = ?3, last_error = ?4 WHERE seq = ?1",
        &[&seq, &at, &attempts, &error],
    )?;
    Ok(())
}

/// Deletes up to `limit` finished (sent or failed) mails queued before `before`.
pub fn prune(db: &Db, before: i64, limit: usize) -> DbResult<usize> {
    db.execute(
        "DELETE FROM mail_outbox WHERE seq IN (
            SELECT seq FROM mail_outbox
            WHERE enqueued_at < ?1 AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)
            LIMIT ?2)",
        &[&before, &(limit as i64)],
    )
}

/// One mail of the outbox as admins see it (no bodies).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MailStatus {
    #[schema(format = "uuid")]
    pub id: String,
    /// `agent_notification`, `visitor_notification`, `transcript` (more may come).
    pub kind: String,
    pub recipient: String,
    pub subject: String,
    #[schema(required = true, format = "uuid")]
    pub chat_id: Option<String>,
    /// `pending`, `sent` or `failed`.
    pub status: String,
    #[schema(minimum = 0)]
    pub attempts: i64,
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// Unix milliseconds.
    pub enqueued_at: i64,
    /// Unix milliseconds.
    #[schema(required = true)]
    pub sent_at: Option<i64>,
}

/// The newest `limit` mails, newest first.
pub fn recent(db: &Db, limit: usize) -> DbResult<Vec<MailStatus>> {
    db.query_map(
        "SELECT id, kind, recipient, subject, chat_id,
                CASE WHEN sent_at IS NOT NULL THEN 'sent'
                     WHEN failed_at IS NOT NULL THEN 'failed' ELSE 'pending' END,
                attempts, last_error, enqueued_at, sent_at
         FROM mail_outbox ORDER BY seq DESC LIMIT ?1",
        &[&(limit as i64)],
        |row| {
            Ok(MailStatus {
                id: row.get(0)?,
                kind: row.get(1)?,
                recipient: row.get(2)?,
                subject: row.get(3)?,
                chat_id: row.get(4)?,
                status: row.get(5)?,
                attempts: row.get(6)?,
                last_error: row.get(7)?,
                enqueued_at: row.get(8)?,
                sent_at: row.get(9)?,
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate;
    use rusqlite::Connection;

    fn fresh() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = ON").unwrap();
        migrate(&mut conn).unwrap();
        conn
    }

    fn chat(db: &Db, id: &str) {
        db.execute(
            "INSERT INTO visitors (id, created_at) VALUES (?1, 'now')",
            &[&format!("v-{id}")],
        )
        .unwrap();
        db.execute(
            "INSERT INTO chats (id, visitor_id, created_at) VALUES (?1, ?2, 'now')",
            &[&id, &format!("v-{id}")],
        )
        .unwrap();
    }

    fn queue(db: &Db, id: &str, chat_id: &str, at: i64) {
        let visitor = format!("v-{chat_id}");
        insert(
            db,
            &NewMail {
                id,
                kind: "visitor_notification",
                recipient: "v@example.com",
                chat_id: Some(chat_id),
                visitor_id: Some(&visitor),
                subject: "s",
                text_body: "t",
                html_body: "h",
                unsubscribe_url: None,
                enqueued_at: at,
            },
        )
        .unwrap();
    }

    #[test]
    fn the_first_secret_stays_the_secret() {
        let conn = fresh();
        let db = Db::Sqlite(&conn);
        assert_eq!(secret(&db, "links", "a").unwrap(), "a");
        assert_eq!(secret(&db, "links", "b").unwrap(), "a");
    }

    #[test]
    fn a_schedule_keeps_its_earliest_due_time_until_settled() {
        let conn = fresh();
        let db = Db::Sqlite(&conn);
        chat(&db, "c1");
        schedule(&db, "c1", Side::Agents, 100).unwrap();
        schedule(&db, "c1", Side::Agents, 200).unwrap();
        assert!(due(&db, 99, 10).unwrap().is_empty());
        let mut row = due(&db, 100, 10).unwrap().remove(0);
        assert_eq!((row.chat_id.as_str(), row.side), ("c1", Side::Agents));
        row.notified_seq = 7;
        settle(&db, &row, None).unwrap();
        assert!(due(&db, 1_000, 10).unwrap().is_empty());
        schedule(&db, "c1", Side::Agents, 300).unwrap();
        let row = due(&db, 300, 10).unwrap().remove(0);
        assert_eq!(row.notified_seq, 7);
        assert_eq!(next_due(&db).unwrap(), Some(300));
    }

    #[test]
    fn a_claimed_mail_is_not_claimed_again_until_its_lease_runs_out() {
        let conn = fresh();
        let db = Db::Sqlite(&conn);
        chat(&db, "c1");
        queue(&db, "m1", "c1", 10);
        queue(&db, "m2", "c1", 20);
        let claimed = claim(&db, 15, 1_000, 10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, "m1");
        assert!(claim(&db, 500, 1_000, 10)
            .unwrap()
            .iter()
            .all(|m| m.id == "m2"));
        assert_eq!(claim(&db, 1_000, 2_000, 10).unwrap()[0].id, "m1");
        mark_sent(&db, claimed[0].seq, 1, 1_000).unwrap();
        assert!(claim(&db, 5_000, 6_000, 10)
            .unwrap()
            .iter()
            .all(|m| m.id == "m2"));
    }

    #[test]
    fn deleting_a_chat_or_visitor_removes_its_mail() {
        let conn = fresh();
        let db = Db::Sqlite(&conn);
        chat(&db, "c1");
        chat(&db, "c2");
        queue(&db, "m1", "c1", 10);
        queue(&db, "m2", "c2", 10);
        schedule(&db, "c1", Side::Visitor, 10).unwrap();
        db.execute("DELETE FROM chats WHERE id = 'c1'", &[])
            .unwrap();
        db.execute("DELETE FROM visitors WHERE id = 'v-c2'", &[])
            .unwrap();
        assert!(recent(&db, 10).unwrap().is_empty());
        assert!(due(&db, 100, 10).unwrap().is_empty());
    }
}

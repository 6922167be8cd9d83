//! Queries on webhooks and their durable delivery queue.
//!
//! A queue is the pending deliveries of one (webhook, chat) pair, in `seq` order. Only a
//! queue's head is ever handed to the worker, so a receiver sees each chat's events in order.

use serde::Serialize;

use crate::store::sql::{Db, DbResult, Row};

/// A webhook as the API shows it (the secret is never shown again after creation).
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    pub disabled: bool,
}

fn from_row(row: &Row) -> DbResult<Webhook> {
    let events: String = row.get(2)?;
    Ok(Webhook {
        id: row.get(0)?,
        url: row.get(1)?,
        events: events.split(',').map(str::to_string).collect(),
        created_at: row.get(3)?,
        disabled: row.get(4)?,
    })
}

pub fn insert(db: &Db, webhook: &Webhook, secret: &str) -> DbResult<()> {
    db.execute(
        "INSERT INTO webhooks (id, url, events, secret, disabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        &[
            &webhook.id,
            &webhook.url,
            &webhook.events.join(","),
            &secret,
            &webhook.disabled,
            &webhook.created_at,
        ],
    )?;
    Ok(())
}

/// Every webhook, oldest first.
pub fn list(db: &Db) -> DbResult<Vec<Webhook>> {
    db.query_map(
        "SELECT id, url, events, created_at, disabled FROM webhooks ORDER BY created_at, id",
        &[],
        from_row,
    )
}

/// Deletes a webhook and (by cascade) its pending deliveries. Returns whether it existed.
pub fn delete(db: &Db, id: &str) -> DbResult<bool> {
    Ok(db.execute("DELETE FROM webhooks WHERE id = ?1", &[&id])? > 0)
}

pub fn count_active(db: &Db) -> DbResult<i64> {
    db.query_row(
        "SELECT COUNT(*) FROM webhooks WHERE NOT disabled",
        &[],
        |r| r.get(0),
    )
}

/// Ids of the active webhooks subscribed to `event`. Webhooks are few, so one small scan.
pub fn subscribers(db: &Db, event: &str) -> DbResult<Vec<String>> {
    let active = db.query_map(
        "SELECT id, events FROM webhooks WHERE NOT disabled",
        &[],
        |row| Ok((row.get::<String>(0)?, row.get::<String>(1)?)),
    )?;
    Ok(active
        .into_iter()
        .filter(|(_, events)| events.split(',').any(|e| e == event))
        .map(|(id, _)| id)
        .collect())
}

/// Drops every delivery, sent or not, about these chats: their payloads hold the chats'
/// messages and visitor, which an erasure must not leave behind nor still send.
pub fn delete_for_chats(db: &Db, chat_ids: &[String]) -> DbResult<usize> {
    let mut deleted = 0;
    for chat_id in chat_ids {
        deleted += db.execute(
            "DELETE FROM webhook_deliveries WHERE chat_id = ?1",
            &[chat_id],
        )?;
    }
    Ok(deleted)
}

/// One row of the queue, as enqueued.
pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub webhook_id: &'a str,
    pub event: &'a str,
    pub chat_id: &'a str,
    pub payload: &'a str,
    /// Unix milliseconds; also the first attempt's time.
    pub enqueued_at: i64,
}

pub fn insert_delivery(db: &Db, new: &NewDelivery) -> DbResult<()> {
    // `seq` is left to the database (AUTOINCREMENT / identity column).
    db.execute(
        "INSERT INTO webhook_deliveries
            (id, webhook_id, event, chat_id, payload, enqueued_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        &[
            &new.id,
            &new.webhook_id,
            &new.event,
            &new.chat_id,
            &new.payload,
            &new.enqueued_at,
        ],
    )?;
    Ok(())
}

/// The head of a queue: what the worker sends next for one (webhook, chat).
#[derive(Debug, Clone)]
pub struct Head {
    pub seq: i64,
    pub id: String,
    pub webhook_id: String,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
    pub enqueued_at: i64,
    pub next_attempt_at: i64,
    pub url: String,
    pub secret: String,
}

fn head_from_row(row: &Row) -> DbResult<Head> {
    Ok(Head {
        seq: row.get(0)?,
        id: row.get(1)?,
        webhook_id: row.get(2)?,
        event: row.get(3)?,
        payload: row.get(4)?,
        attempts: row.get(5)?,
        enqueued_at: row.get(6)?,
        next_attempt_at: row.get(7)?,
        url: row.get(8)?,
        secret: row.get(9)?,
    })
}

/// The seq of each pending queue's head.
const HEAD_SEQS: &str = "SELECT MIN(seq) AS seq FROM webhook_deliveries
    WHERE delivered_at IS NULL AND failed_at IS NULL
    GROUP BY webhook_id, chat_id";

/// The heads of the pending queues of active webhooks, soonest due first, at most `limit`.
/// Reads only the partial index of pending rows.
pub fn heads(db: &Db, limit: usize) -> DbResult<Vec<Head>> {
    db.query_map(
        &format!(
            "SELECT d.seq, d.id, d.webhook_id, d.event, d.payload, d.attempts, d.enqueued_at,
                    d.next_attempt_at, w.url, w.secret
             FROM ({HEAD_SEQS}) AS h
             JOIN webhook_deliveries d ON d.seq = h.seq
             JOIN webhooks w ON w.id = d.webhook_id
             WHERE NOT w.disabled
             ORDER BY d.next_attempt_at, d.seq
             LIMIT ?1"
        ),
        &[&(limit as i64)],
        head_from_row,
    )
}

/// PostgreSQL only: takes up to `limit` queue heads due at `now` (unix ms) for this worker,
/// soonest due first, and leases each until `lease_until` by moving its `next_attempt_at`
/// there. Several instances may run the worker on one database: a head another one is
/// claiming right now is skipped (`SKIP LOCKED`), and one it claimed is no longer due, so
/// no two workers send the same head at once, and a queue's next row is never sent before
/// its head is delivered or given up. A worker that dies mid-send leaves its lease to run
/// out; the head is then due again and another worker sends it (at least once). Recording
/// the outcome (`mark_*`) replaces the lease.
pub fn claim_heads(db: &Db, now: i64, lease_until: i64, limit: usize) -> DbResult<Vec<Head>> {
    // MATERIALIZED: the locking subquery runs once, never re-planned into the UPDATE.
    // `FOR UPDATE OF d`: the webhooks row is only read, not locked.
    let mut heads = db.query_map(
        &format!(
            "WITH claimed AS MATERIALIZED (
                 SELECT d.seq FROM webhook_deliveries d
                 JOIN webhooks w ON w.id = d.webhook_id
                 WHERE d.seq IN ({HEAD_SEQS})
                   AND d.delivered_at IS NULL AND d.failed_at IS NULL
                   AND d.next_attempt_at <= ?1 AND NOT w.disabled
                 ORDER BY d.next_attempt_at, d.seq
                 LIMIT ?3
                 FOR UPDATE OF d SKIP LOCKED)
             UPDATE webhook_deliveries d SET next_attempt_at = ?2
             FROM claimed c, webhooks w
             WHERE d.seq = c.seq AND w.id = d.webhook_id
             RETURNING d.seq, d.id, d.webhook_id, d.event, d.payload, d.attempts,
                       d.enqueued_at, d.next_attempt_at, w.url, w.secret"
        ),
        &[&now, &lease_until, &(limit as i64)],
        head_from_row,
    )?;
    // RETURNING comes in no particular order.
    heads.sort_by_key(|h| h.seq);
    Ok(heads)
}

/// The soonest `next_attempt_at` after `now` among the heads of active webhooks' queues
/// (a retry, or another worker's lease), to know when to look again.
pub fn next_attempt_after(db: &Db, now: i64) -> DbResult<Option<i64>> {
    db.query_row(
        &format!(
            "SELECT MIN(d.next_attempt_at)
             FROM ({HEAD_SEQS}) AS h
             JOIN webhook_deliveries d ON d.seq = h.seq
             JOIN webhooks w ON w.id = d.webhook_id
             WHERE NOT w.disabled AND d.next_attempt_at > ?1"
        ),
        &[&now],
        |r| r.get(0),
    )
}

pub fn mark_delivered(db: &Db, seq: i64, attempts: i64, at: i64) -> DbResult<()> {
    db.execute(
        "UPDATE webhook_deliveries SET delivered_at = ?2, attempts = ?3, last_error = NULL
         WHERE seq = ?1",
        &[&seq, &at, &attempts],
    )?;
    Ok(())
}

pub fn mark_retry(
    db: &Db,
    seq: i64,
    attempts: i64,
    next_attempt_at: i64,
    error: &str,
) -> DbResult<()> {
    db.execute(
        "UPDATE webhook_deliveries SET attempts = ?2, next_attempt_at = ?3, last_error = ?4
         WHERE seq = ?1",
        &[&seq, &attempts, &next_attempt_at, &error],
    )?;
    Ok(())
}

/// Gives a delivery up, which lets the rest of its queue go on.
pub fn mark_failed(db: &Db, seq: i64, attempts: i64, at: i64, error: &str) -> DbResult<()> {
    db.execute(
        "UPDATE webhook_deliveries SET failed_at = ?2, attempts = ?3, last_error = ?4
         WHERE seq = ?1",
        &[&seq, &at, &attempts, &error],
    )?;
    Ok(())
}

/// Deletes up to `limit` finished (delivered or failed) rows enqueued before `before`.
pub fn prune(db: &Db, before: i64, limit: usize) -> DbResult<usize> {
    db.execute(
        "DELETE FROM webhook_deliveries WHERE seq IN (
            SELECT seq FROM webhook_deliveries
            WHERE enqueued_at < ?1 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)
            LIMIT ?2)",
        &[&before, &(limit as i64)],
    )
}

/// Where one delivery stands (for tests and support).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    pub attempts: i64,
    pub delivered: bool,
    pub failed: bool,
    pub last_error: Option<String>,
}

pub fn delivery_state(db: &Db, id: &str) -> DbResult<Option<DeliveryState>> {
    // `IS NOT NULL` is 0/1 on SQLite and a BOOLEAN on PostgreSQL: both read as `bool`.
    db.query_opt(
        "SELECT attempts, delivered_at IS NOT NULL, failed_at IS NOT NULL, last_error
         FROM webhook_deliveries WHERE id = ?1",
        &[&id],
        |r| {
            Ok(DeliveryState {
                attempts: r.get(0)?,
                delivered: r.get(1)?,
                failed: r.get(2)?,
                last_error: r.get(3)?,
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

    fn webhook(id: &str, events: &[&str]) -> Webhook {
        Webhook {
            id: id.into(),
            url: "http://127.0.0.1:9/hook".into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            disabled: false,
        }
    }

    fn enqueue(db: &Db, id: &str, webhook_id: &str, chat_id: &str, at: i64) {
        insert_delivery(
            db,
            &NewDelivery {
                id,
                webhook_id,
                event: "message.created",
                chat_id,
                payload: "{}",
                enqueued_at: at,
            },
        )
        .unwrap();
    }

    #[test]
    fn only_subscribed_webhooks_receive_an_event() {
        let conn = fresh();
        let db = Db::Sqlite(&conn);
        insert(&db, &webhook("w1", &["message.created"]), "s").unwrap();
        insert(&db, &webhook("w2", &["chat.created", "chat.closed"]), "s").unwrap();
        assert_eq!(subscribers(&db, "message.created").unwrap(), ["w1"]);
        assert_eq!(subscribers(&db, "chat.closed").unwrap(), ["w2"]);
        assert!(subscribers(&db, "chat").unwrap().is_empty());
    }

    #[test]
    fn only_the_head_of_each_queue_is_handed_out() {
        let conn = fresh();
        let db = Db::Sqlite(&conn);
        insert(&db, &webhook("w1", &["message.created"]), "s").unwrap();
        enqueue(&db, "d1", "w1", "c1", 10);
        enqueue(&db, "d2", "w1", "c1", 11);
        enqueue(&db, "d3", "w1", "c2", 12);
        let ids =
            |db: &Db| -> Vec<String> { heads(db, 10).unwrap().into_iter().map(|h| h.id).collect() };
        assert_eq!(ids(&db), ["d1", "d3"]);
        // A head that waits for a retry still blocks the rest of its queue.
        let d1 = heads(&db, 10).unwrap().remove(0);
        mark_retry(&db, d1.seq, 1, 1_000, "HTTP 500").unwrap();
        assert_eq!(ids(&db), ["d3", "d1"]);
        mark_delivered(&db, d1.seq, 2, 20).unwrap();
        assert_eq!(ids(&db), ["d2", "d3"]);
        // Deleting the webhook drops its queue.
        assert!(delete(&db, "w1").unwrap());
        assert!(ids(&db).is_empty());
    }

    #[test]
    fn pruning_removes_only_old_finished_rows() {
        let conn = fresh();
        let db = Db::Sqlite(&conn);
        insert(&db, &webhook("w1", &["message.created"]), "s").unwrap();
        enqueue(&db, "old-done", "w1", "c1", 10);
        enqueue(&db, "old-pending", "w1", "c2", 10);
        enqueue(&db, "new-done", "w1", "c3", 100);
        for head in heads(&db, 10).unwrap() {
            if head.id != "old-pending" {
                mark_delivered(&db, head.seq, 1, 100).unwrap();
            }
        }
        assert_eq!(prune(&db, 50, 100).unwrap(), 1);
        assert!(delivery_state(&db, "old-done").unwrap().is_none());
        assert!(delivery_state(&db, "old-pending").unwrap().is_some());
        assert!(delivery_state(&db, "new-done").unwrap().is_some());
    }
}

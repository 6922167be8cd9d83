//! Queries on webhooks and their durable delivery queue.
//!
//! A queue is the pending deliveries of one (webhook, chat) pair, in `seq` order. Only a
//! queue's head is ever handed to the worker, so a receiver sees each chat's events in order.

use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;

/// A webhook as the API shows it (the secret is never shown again after creation).
#[derive(Debug, Clone, Serialize)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    pub disabled: bool,
}

fn from_row(row: &Row) -> rusqlite::Result<Webhook> {
    let events: String = row.get(2)?;
    Ok(Webhook {
        id: row.get(0)?,
        url: row.get(1)?,
        events: events.split(',').map(str::to_string).collect(),
        created_at: row.get(3)?,
        disabled: row.get(4)?,
    })
}

pub fn insert(conn: &Connection, webhook: &Webhook, secret: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhooks (id, url, events, secret, disabled, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        webhook.id,
        webhook.url,
        webhook.events.join(","),
        secret,
        webhook.disabled,
        webhook.created_at
    ])?;
    Ok(())
}

/// Every webhook, oldest first.
pub fn list(conn: &Connection) -> rusqlite::Result<Vec<Webhook>> {
    conn.prepare_cached(
        "SELECT id, url, events, created_at, disabled FROM webhooks ORDER BY created_at, id",
    )?
    .query_map([], from_row)?
    .collect()
}

/// Deletes a webhook and (by cascade) its pending deliveries. Returns whether it existed.
pub fn delete(conn: &Connection, id: &str) -> rusqlite::Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1")?
        .execute([id])?
        > 0)
}

pub fn count_active(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached("SELECT COUNT(*) FROM webhooks WHERE disabled = 0")?
        .query_row([], |r| r.get(0))
}

/// Ids of the active webhooks subscribed to `event`. Webhooks are few, so one small scan.
pub fn subscribers(conn: &Connection, event: &str) -> rusqlite::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut statement =
        conn.prepare_cached("SELECT id, events FROM webhooks WHERE disabled = 0")?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        let events: String = row.get(1)?;
        if events.split(',').any(|e| e == event) {
            ids.push(row.get(0)?);
        }
    }
    Ok(ids)
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

pub fn insert_delivery(conn: &Connection, new: &NewDelivery) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO webhook_deliveries
            (id, webhook_id, event, chat_id, payload, enqueued_at, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?
    .execute(params![
        new.id,
        new.webhook_id,
        new.event,
        new.chat_id,
        new.payload,
        new.enqueued_at
    ])?;
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

/// The heads of the pending queues of active webhooks, soonest due first, at most `limit`.
/// Reads only the partial index of pending rows.
pub fn heads(conn: &Connection, limit: usize) -> rusqlite::Result<Vec<Head>> {
    conn.prepare_cached(
        "SELECT d.seq, d.id, d.webhook_id, d.event, d.payload, d.attempts, d.enqueued_at,
                d.next_attempt_at, w.url, w.secret
         FROM (SELECT MIN(seq) AS seq FROM webhook_deliveries
               WHERE delivered_at IS NULL AND failed_at IS NULL
               GROUP BY webhook_id, chat_id) AS h
         JOIN webhook_deliveries d ON d.seq = h.seq
         JOIN webhooks w ON w.id = d.webhook_id
         WHERE w.disabled = 0
         ORDER BY d.next_attempt_at, d.seq
         LIMIT ?1",
    )?
    .query_map([limit as i64], |row| {
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
    })?
    .collect()
}

pub fn mark_delivered(conn: &Connection, seq: i64, attempts: i64, at: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET delivered_at = ?2, attempts = ?3, last_error = NULL
         WHERE seq = ?1",
    )?
    .execute(params![seq, at, attempts])?;
    Ok(())
}

pub fn mark_retry(
    conn: &Connection,
    seq: i64,
    attempts: i64,
    next_attempt_at: i64,
    error: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET attempts = ?2, next_attempt_at = ?3, last_error = ?4
         WHERE seq = ?1",
    )?
    .execute(params![seq, attempts, next_attempt_at, error])?;
    Ok(())
}

/// Gives a delivery up, which lets the rest of its queue go on.
pub fn mark_failed(
    conn: &Connection,
    seq: i64,
    attempts: i64,
    at: i64,
    error: &str,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE webhook_deliveries SET failed_at = ?2, attempts = ?3, last_error = ?4
         WHERE seq = ?1",
    )?
    .execute(params![seq, at, attempts, error])?;
    Ok(())
}

/// Deletes up to `limit` finished (delivered or failed) rows enqueued before `before`.
pub fn prune(conn: &Connection, before: i64, limit: usize) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "DELETE FROM webhook_deliveries WHERE seq IN (
            SELECT seq FROM webhook_deliveries
            WHERE enqueued_at < ?1 AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)
            LIMIT ?2)",
    )?
    .execute(params![before, limit as i64])
}

/// Where one delivery stands (for tests and support).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    pub attempts: i64,
    pub delivered: bool,
    pub failed: bool,
    pub last_error: Option<String>,
}

pub fn delivery_state(conn: &Connection, id: &str) -> rusqlite::Result<Option<DeliveryState>> {
    conn.prepare_cached(
        "SELECT attempts, delivered_at IS NOT NULL, failed_at IS NOT NULL, last_error
         FROM webhook_deliveries WHERE id = ?1",
    )?
    .query_row([id], |r| {
        Ok(DeliveryState {
            attempts: r.get(0)?,
            delivered: r.get(1)?,
            failed: r.get(2)?,
            last_error: r.get(3)?,
        })
    })
    .optional()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrate;

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

    fn enqueue(conn: &Connection, id: &str, webhook_id: &str, chat_id: &str, at: i64) {
        insert_delivery(
            conn,
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
        insert(&conn, &webhook("w1", &["message.created"]), "s").unwrap();
        insert(&conn, &webhook("w2", &["chat.created", "chat.closed"]), "s").unwrap();
        assert_eq!(subscribers(&conn, "message.created").unwrap(), ["w1"]);
        assert_eq!(subscribers(&conn, "chat.closed").unwrap(), ["w2"]);
        assert!(subscribers(&conn, "chat").unwrap().is_empty());
    }

    #[test]
    fn only_the_head_of_each_queue_is_handed_out() {
        let conn = fresh();
        insert(&conn, &webhook("w1", &["message.created"]), "s").unwrap();
        enqueue(&conn, "d1", "w1", "c1", 10);
        enqueue(&conn, "d2", "w1", "c1", 11);
        enqueue(&conn, "d3", "w1", "c2", 12);
        let ids = |conn: &Connection| -> Vec<String> {
            heads(conn, 10).unwrap().into_iter().map(|h| h.id).collect()
        };
        assert_eq!(ids(&conn), ["d1", "d3"]);
        // A head that waits for a retry still blocks the rest of its queue.
        let d1 = heads(&conn, 10).unwrap().remove(0);
        mark_retry(&conn, d1.seq, 1, 1_000, "HTTP 500").unwrap();
        assert_eq!(ids(&conn), ["d3", "d1"]);
        mark_delivered(&conn, d1.seq, 2, 20).unwrap();
        assert_eq!(ids(&conn), ["d2", "d3"]);
        // Deleting the webhook drops its queue.
        assert!(delete(&conn, "w1").unwrap());
        assert!(ids(&conn).is_empty());
    }

    #[test]
    fn pruning_removes_only_old_finished_rows() {
        let conn = fresh();
        insert(&conn, &webhook("w1", &["message.created"]), "s").unwrap();
        enqueue(&conn, "old-done", "w1", "c1", 10);
        enqueue(&conn, "old-pending", "w1", "c2", 10);
        enqueue(&conn, "new-done", "w1", "c3", 100);
        for head in heads(&conn, 10).unwrap() {
            if head.id != "old-pending" {
                mark_delivered(&conn, head.seq, 1, 100).unwrap();
            }
        }
        assert_eq!(prune(&conn, 50, 100).unwrap(), 1);
        assert!(delivery_state(&conn, "old-done").unwrap().is_none());
        assert!(delivery_state(&conn, "old-pending").unwrap().is_some());
        assert!(delivery_state(&conn, "new-done").unwrap().is_some());
    }
}

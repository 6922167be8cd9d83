//! Deletes closed chats older than `PARLEY_RETENTION_DAYS`, in small batches.

use std::time::Duration;

use time::OffsetDateTime;

use crate::domain;
use crate::store::{chats, Store};

/// Chats deleted per write transaction: small, so sends queued behind it wait only briefly.
const BATCH: usize = 50;
/// Held by the one instance sweeping, when several share a PostgreSQL database.
const SWEEP_LOCK: i64 = 0x7061_726c_6579_0001;
/// How often the sweep runs.
const EVERY: Duration = Duration::from_secs(60 * 60);

/// Runs one sweep now and then every hour, forever.
pub async fn run(store: Store, days: u64) {
    let mut every = tokio::time::interval(EVERY);
    loop {
        every.tick().await;
        match sweep(&store, days).await {
            Ok(0) => {}
            Ok(deleted) => {
                log::info!("retention: deleted {deleted} chats closed over {days} days ago")
            }
            Err(e) => log::error!("retention sweep failed: {e}"),
        }
    }
}

/// Deletes every chat closed more than `days` ago; returns how many.
pub async fn sweep(store: &Store, days: u64) -> Result<usize, crate::domain::DomainError> {
    let cutoff = domain::timestamp(OffsetDateTime::now_utc() - Duration::from_secs(days * 86_400));
    let mut total = 0;
    loop {
        let cutoff = cutoff.clone();
        let deleted = store
            .write(move |db| {
                if !db.try_exclusive(SWEEP_LOCK)? {
                    // Another instance is sweeping right now.
                    return Ok(0);
                }
                Ok(chats::delete_closed_before(db, &cutoff, BATCH)?)
            })
            .await?;
        total += deleted;
        if deleted < BATCH {
            if total > 0 {
                // Deleted is gone: out of the file's pages and out of the WAL.
                store.scrub().await?;
            }
            return Ok(total);
        }
        // Let other writes through between batches.
        tokio::task::yield_now().await;
    }
}

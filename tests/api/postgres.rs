//! PostgreSQL as the store, and several instances on one database: what one instance
//! commits, the polls held by another answer at once; seq stays commit order under
//! concurrent writers on both; revocations, typing and webhooks work across instances.
//!
//! Each test starts its own instances (the real app) on a fresh database of the throwaway
//! cluster in `pg.rs`.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use crate::availability::wait_for_online;
use crate::helpers::{act_while_held, seqs, spawn_app_with, TestApp};
use crate::operations::cli;
use crate::pg;
use crate::webhooks::{create_webhook, Receiver};

const WAIT: u64 = 20;

/// Two instances on one fresh database (`None` when PostgreSQL is missing outside CI).
async fn two_instances() -> Option<(TestApp, TestApp)> {
    two_instances_with(|_| {}).await
}

async fn two_instances_with(
    adjust: impl Fn(&mut parley::config::Config),
) -> Option<(TestApp, TestApp)> {
    let url = pg::cluster()?.fresh_database();
    let a = spawn_app_with(|c| {
        c.database_url = Some(url.clone());
        adjust(c);
    })
    .await;
    let b = spawn_app_with(|c| {
        c.database_url = Some(url.clone());
        adjust(c);
    })
    .await;
    Some((a, b))
}

#[tokio::test]
async fn a_message_sent_to_one_instance_answers_a_poll_held_by_another() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let chat = a.new_visitor_chat().await;
    let agent = b.admin_token().await;
    let (poll, sent, held) = act_while_held(
        b.poll(&agent, &chat.chat_id, 0, WAIT),
        a.send(&chat.token, &chat.chat_id, "across", None),
    )
    .await;
    sent.assert_status(201);
    let body = poll.assert_status(200);
    assert_eq!(body["messages"][0]["body"], "across");
    assert_eq!(body["chat"]["last_message"]["body"], "across");
    assert!(held < Duration::from_secs(WAIT), "woken, not timed out");
    // And the inbox of the other instance hears of it too.
    let inbox = b.inbox(&agent, 0, 0).await;
    let body = inbox.assert_status(200);
    assert!(body.to_string().contains(&chat.chat_id), "{body}");
}

/// Writers on both instances, one chat, followers on both: every follower sees every
/// message once, in seq order, with nothing skipped. A seq handed out in request order
/// rather than commit order would let a follower's cursor pass a row that commits later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seq_is_commit_order_across_instances_under_concurrent_writers() {
    const WRITERS_PER_INSTANCE: usize = 6;
    const MESSAGES_EACH: usize = 20;
    const TOTAL: usize = 2 * WRITERS_PER_INSTANCE * MESSAGES_EACH;
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let chat = a.new_visitor_chat().await;
    let agent = a.admin_token().await;
    let apps = [a.api.clone(), b.api.clone()];
    let mut followers = tokio::task::JoinSet::new();
    for api in apps.clone() {
        let token = agent.clone();
        let chat_id = chat.chat_id.clone();
        followers.spawn(async move {
            let mut seen = Vec::new();
            let mut after = 0;
            while seen.len() < TOTAL {
                let reply = api.poll(&token, &chat_id, after, 5).await;
                let body = reply.assert_status(200);
                seen.extend(seqs(body));
                after = body["next"].as_i64().unwrap();
            }
            seen
        });
    }
    let mut writers = tokio::task::JoinSet::new();
    for (i, api) in apps
        .iter()
        .cycle()
        .take(2 * WRITERS_PER_INSTANCE)
        .enumerate()
    {
        let api = api.clone();
        let (token, chat_id) = if i % 2 == 0 {
            (chat.token.clone(), chat.chat_id.clone())
        } else {
            (agent.clone(), chat.chat_id.clone())
        };
        writers.spawn(async move {
            for n in 0..MESSAGES_EACH {
                api.send(&token, &chat_id, &format!("w{i} m{n}"), None)
                    .await
                    .assert_status(201);
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.unwrap();
    }
    let followed = tokio::time::timeout(Duration::from_secs(60), async {
        let mut all = Vec::new();
        while let Some(seen) = followers.join_next().await {
            all.push(seen.unwrap());
        }
        all
    })
    .await
    .expect("both followers see every message");
    let mut stored = Vec::new();
    let mut after = 0;
    loop {
        let reply = apps[0].messages(&agent, &chat.chat_id, after, 100).await;
        let page = seqs(reply.assert_status(200));
        match page.last() {
            Some(&last) => after = last,
            None => break,
        }
        stored.extend(page);
    }
    assert_eq!(stored.len(), TOTAL);
    for seen in followed {
        assert_eq!(seen, stored, "a follower saw the messages differently");
    }
    assert!(stored.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn typing_on_one_instance_answers_a_poll_held_by_another() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let chat = a.new_visitor_chat().await;
    let agent = a.admin_token().await;
    let path = format!("/api/v1/chats/{}/typing", chat.chat_id);
    let (poll, typed, held) = act_while_held(
        b.poll(&chat.token, &chat.chat_id, 0, WAIT),
        a.call("POST", &path, Some(&agent), Some(json!({"typing": true}))),
    )
    .await;
    typed.assert_status(204);
    let body = poll.assert_status(200);
    assert_eq!(body["typing"]["agent"], true);
    assert!(held < Duration::from_secs(WAIT), "woken, not timed out");
    // Both instances now hold the same state version: quoting it to either one parks.
    let state = body["state"].as_u64().unwrap();
    for app in [&a, &b] {
        let path = format!(
            "/api/v1/chats/{}/messages?after=0&wait=1&state={state}",
            chat.chat_id
        );
        let reply = app.call("GET", &path, Some(&chat.token), None).await;
        assert_eq!(reply.assert_status(200)["state"].as_u64(), Some(state));
    }
}

#[tokio::test]
async fn a_logout_on_one_instance_ends_the_token_on_the_other_at_once() {
    let Some((a, b)) = two_instances().await else {
        return;
    };
    let chat = a.new_visitor_chat().await;
    let agent = a.admin_token().await;
    // The other instance has the session cached, and a poll of it held.
    b.call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await
        .assert_status(200);
    let (poll, logout, held) = act_while_held(
        b.poll(&agent, &chat.chat_id, 0, WAIT),
        a.call("POST", "/api/v1/agents/logout", Some(&agent), None),
    )
    .await;
    logout.assert_status(204);
    poll.assert_error(401, "unauthorized");
    assert!(held < Duration::from_secs(WAIT), "ended, not timed out");
    b.call("GET", "/api/v1/agents/me", Some(&agent), None)
        .await
        .assert_error(401, "unauthorized");
}

#[tokio::test]
async fn instances_starting_at_once_on_an_empty_database_migrate_it_once() {
    let Some(cluster) = pg::cluster() else {
        return;
    };
    let url = cluster.empty_database();
    let (a, b) = tokio::join!(
        spawn_app_with(|c| c.database_url = Some(url.clone())),
        spawn_app_with(|c| c.database_url = Some(url.clone())),
    );
    let chat = a.new_visitor_chat().await;
    let agent = b.admin_token().await;
    b.send(&agent, &chat.chat_id, "both work", None)
        .await
        .assert_status(201);
    let (version, admins) = pg::Cluster::with_client(&url, |client| {
        let version: i64 = client
            .query_one("SELECT version FROM parley_schema", &[])
            .unwrap()
            .get(0);
        let admins: i64 = client
            .query_one("SELECT count(*) FROM agents", &[])
            .unwrap()
            .get(0);
        (version, admins)
    });
    assert_eq!(version, parley::store::postgres::SCHEMA_VERSION);
    assert_eq!(admins, 1, "the first admin is created once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_webhook_delivery_is_sent_once_by_one_of_several_instances() {
    const MESSAGES: usize = 30;
    let receiver = Receiver::start(0).await;
    let Some((a, b)) = two_instances_with(|c| c.webhook_allow_private = true).await else {
        return;
    };
    let admin = a.admin_token().await;
    create_webhook(&a, &admin, &receiver.url, &["message.created"]).await;
    let chat = b.new_visitor_chat().await;
    for n in 0..MESSAGES {
        let app = if n % 2 == 0 { &a } else { &b };
        app.send(&chat.token, &chat.chat_id, &format!("m{n}"), None)
            .await
            .assert_status(201);
    }
    let delivered = receiver.wait_for(MESSAGES).await;
    // Whatever else arrives would come within a few worker rounds.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let delivered_now = receiver.delivered();
    let ids: HashSet<_> = delivered_now.iter().map(|r| r.delivery.clone()).collect();
    assert_eq!(delivered.len(), MESSAGES);
    assert_eq!(ids.len(), delivered_now.len(), "a delivery was sent twice");
    assert_eq!(delivered_now.len(), MESSAGES);
}

#[tokio::test]
async fn the_command_line_works_on_postgresql_and_backup_points_to_pg_dump() {
    let Some(cluster) = pg::cluster() else {
        return;
    };
    let url = cluster.fresh_database();
    let app = spawn_app_with(|c| c.database_url = Some(url.clone())).await;
    let (ok, out) = cli(&app, &["migrate"]);
    assert!(ok, "{out}");
    let (ok, out) = cli(
        &app,
        &["agent", "add", "--email", "pg@example.com", "--name", "Pg"],
    );
    assert!(ok, "{out}");
    app.login("pg@example.com", "cli-chosen-password")
        .await
        .assert_status(200);
    let (ok, listing) = cli(&app, &["agent", "list"]);
    assert!(ok && listing.contains("pg@example.com"), "{listing}");
    let (ok, stats) = cli(&app, &["stats"]);
    assert!(ok && stats.contains("agents"), "{stats}");
    let backup = app.dir.path().join("backup.db");
    let (ok, out) = cli(&app, &["backup", backup.to_str().unwrap()]);
    assert!(!ok && out.contains("pg_dump"), "{out}");
    assert!(!backup.exists());
}

/// Every table's columns (name, type, nullability, default) and every index, in order.
fn shape(client: &mut postgres::Client) -> Vec<String> {
    let mut shape: Vec<String> = client
        .query(
            "SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
             FROM information_schema.columns WHERE table_schema = 'public'
             ORDER BY table_name, column_name",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            (0..5)
                .map(|i| r.get::<_, String>(i))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    shape.extend(
        client
            .query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0)),
    );
    shape.extend(
        client
            .query(
                "SELECT conrelid::regclass::text || ' ' || conname || ' '
                        || pg_get_constraintdef(oid)
                 FROM pg_constraint WHERE contype = 'c' AND connamespace = 'public'::regnamespace
                 ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0)),
    );
    shape
}

#[tokio::test]
async fn a_version_1_postgresql_database_migrates_to_the_shape_of_a_fresh_one() {
    let Some(cluster) = pg::cluster() else {
        return;
    };
    let (old, fresh) = (cluster.empty_database(), cluster.empty_database());
    let (old_shape, fresh_shape, version) = pg::Cluster::with_client(&old, move |client| {
        client
            .batch_execute(include_str!(
                "../../src/store/testdata/schema_postgres_v1.sql"
            ))
            .unwrap();
        client
            .batch_execute(
                "CREATE TABLE parley_schema (version BIGINT NOT NULL);
                 INSERT INTO parley_schema VALUES (1)",
            )
            .unwrap();
        parley::store::postgres::migrate(client).unwrap();
        // Twice changes nothing.
        parley::store::postgres::migrate(client).unwrap();
        let version: i64 = client
            .query_one("SELECT version FROM parley_schema", &[])
            .unwrap()
            .get(0);
        let mut fresh_client = postgres::Client::connect(&fresh, postgres::NoTls).unwrap();
        parley::store::postgres::migrate(&mut fresh_client).unwrap();
        (shape(client), shape(&mut fresh_client), version)
    });
    assert_eq!(version, parley::store::postgres::SCHEMA_VERSION);
    assert_eq!(old_shape, fresh_shape);
}

#[tokio::test]
async fn an_agent_present_on_one_instance_makes_the_team_online_on_another() {
    let Some((a, b)) = two_instances_with(|c| c.presence_window = 3).await else {
        return;
    };
    let admin = a.admin_token().await;
    a.call(
        "PATCH",
        "/api/v1/agents/me",
        Some(&admin),
        Some(json!({"availability": "online"})),
    )
    .await
    .assert_status(200);
    wait_for_online(&b, true, Duration::from_secs(3)).await;
    // Requests to A only, every second: B keeps seeing the agent (A writes `last_seen_at`).
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        a.call("GET", "/api/v1/agents/me", Some(&admin), None)
            .await
            .assert_status(200);
    }
    wait_for_online(&b, true, Duration::from_secs(1)).await;
    a.call(
        "PATCH",
        "/api/v1/agents/me",
        Some(&admin),
        Some(json!({"availability": "away"})),
    )
    .await
    .assert_status(200);
    wait_for_online(&b, false, Duration::from_secs(3)).await;
}

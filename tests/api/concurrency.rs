//! Many senders and pollers at once: every committed message reaches every poller exactly
//! once, in seq order.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::helpers::{spawn_app, TestApp};

const CHATS: usize = 6;
const SENDERS_PER_CHAT: usize = 3;
const MESSAGES_PER_SENDER: usize = 25;

/// Chains polls (`after` = previous `next`) until `expected` messages arrived; returns the
/// (seq, id) of everything received, in order of receipt.
async fn chained_poller(
    app: Arc<TestApp>,
    token: String,
    chat_id: String,
    expected: usize,
    limit: usize,
) -> Vec<(i64, String)> {
    let mut received = Vec::new();
    let mut after = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while received.len() < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "poller timed out with {} of {expected}",
            received.len()
        );
        let path = format!("/api/v1/chats/{chat_id}/messages?after={after}&wait=5&limit={limit}");
        let reply = app.call("GET", &path, Some(&token), None).await;
        let body = reply.assert_status(200);
        for m in body["messages"].as_array().unwrap() {
            received.push((
                m["seq"].as_i64().unwrap(),
                m["id"].as_str().unwrap().to_string(),
            ));
        }
        after = body["next"].as_i64().unwrap();
    }
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_chained_poller_sees_every_message_of_its_chat_exactly_once_in_seq_order() {
    let app = Arc::new(spawn_app().await);
    let agent = app.admin_token().await;
    let mut chats = Vec::new();
    for _ in 0..CHATS {
        chats.push(app.new_visitor_chat().await);
    }
    let expected = SENDERS_PER_CHAT * MESSAGES_PER_SENDER;

    // Two pollers per chat: one with big pages, one that must chain through has_more.
    let mut pollers = Vec::new();
    for chat in &chats {
        for limit in [500, 7] {
            pollers.push(tokio::spawn(chained_poller(
                app.clone(),
                chat.token.clone(),
                chat.chat_id.clone(),
                expected,
                limit,
            )));
        }
    }
    let mut senders = Vec::new();
    for (c, chat) in chats.iter().enumerate() {
        for s in 0..SENDERS_PER_CHAT {
            // The visitor sends from two "tabs", the agent from one.
            let token = if s == 0 {
                agent.clone()
            } else {
                chat.token.clone()
            };
            let (app, chat_id) = (app.clone(), chat.chat_id.clone());
            senders.push(tokio::spawn(async move {
                let mut ids = Vec::new();
                for i in 0..MESSAGES_PER_SENDER {
                    let reply = app
                        .send(
                            &token,
                            &chat_id,
                            &format!("c{c} s{s} m{i}"),
                            Some(&format!("c{c}-s{s}-m{i}")),
                        )
                        .await;
                    ids.push(
                        reply.assert_status(201)["message"]["id"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
                }
                (chat_id, ids)
            }));
        }
    }
    let mut sent_by_chat = std::collections::HashMap::<String, HashSet<String>>::new();
    for sender in senders {
        let (chat_id, ids) = sender.await.unwrap();
        sent_by_chat.entry(chat_id).or_default().extend(ids);
    }
    for (i, poller) in pollers.into_iter().enumerate() {
        let received = poller.await.unwrap();
        let chat_id = &chats[i / 2].chat_id;
        let seqs: Vec<i64> = received.iter().map(|(seq, _)| *seq).collect();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "strictly increasing, so no duplicate: {seqs:?}"
        );
        let ids: HashSet<String> = received.into_iter().map(|(_, id)| id).collect();
        assert_eq!(ids.len(), expected, "no duplicate ids");
        assert_eq!(
            &ids, &sent_by_chat[chat_id],
            "exactly the messages sent to this chat"
        );
    }
}

//! The handlers of the JSON API: one module per resource. Each reads the request, calls a
//! service, and writes the answer; the rules live in `services`. The routes are listed in
//! `http::routes`.

pub mod agents;
pub mod attachments;
pub mod canned;
pub mod chats;
pub mod docs;
pub mod health;
pub mod inbox;
pub mod mail;
pub mod messages;
pub mod metrics;
pub mod ratings;
pub mod search;
pub mod settings;
pub mod visitors;
pub mod webhooks;
#[cfg(test)]
mod tests {
    /// What one held poll's handler future occupies: actix boxes it for as long as the poll
    /// is parked, so with 10,000 polls every byte here costs 10 kB.
    fn future_size<Args, F: actix_web::Handler<Args>>(_: &F) -> usize {
        std::mem::size_of::<F::Future>()
    }

    #[test]
    fn held_poll_futures_stay_small() {
        let message_poll = future_size(&super::messages::list_messages);
        let inbox_poll = future_size(&super::inbox::poll_inbox);
        eprintln!("message poll {message_poll} B, inbox poll {inbox_poll} B");
        // Reads boxed and no argument copies (see `messages::list_messages`): it was 1,664.
        assert!(
            message_poll <= 768,
            "message poll future is {message_poll} bytes"
        );
        assert!(inbox_poll <= 768, "inbox poll future is {inbox_poll} bytes");
    }
}

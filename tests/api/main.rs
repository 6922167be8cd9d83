//! Integration tests: the real app over real HTTP, compiled as one test binary.
#![allow(clippy::unwrap_used)]

mod agents;
mod bad_input;
mod chats;
mod concurrency;
mod helpers;
mod inbox;
mod long_poll;
mod messages;
mod metrics;
mod shutdown;
mod visitors;
mod webhooks;

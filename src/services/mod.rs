//! The rules of Parley, shared by the HTTP API and the CLI. A service takes validated input
//! and a [`crate::domain::Caller`], decides, writes through the store, announces through the
//! poll hub, and reports failures as [`crate::domain::DomainError`]. Nothing here knows HTTP.

pub mod access;
pub mod agents;
pub mod attachments;
pub mod auth;
pub mod bus;
pub mod canned;
pub mod chats;
pub mod identity;
pub mod limits;
pub mod mail;
pub mod mentions;
pub mod messages;
pub mod outbound_guard;
pub mod presence;
pub mod privacy;
pub mod retention;
pub mod retry;
pub mod search;
pub mod settings;
pub mod upload_limits;
pub mod visitors;
pub mod webhooks;

//! Integration tests: the real app over real HTTP, compiled as one test binary.
#![allow(clippy::unwrap_used)]

mod agent_tools_browser;
mod agents;
mod attachments;
mod authorization;
mod bad_input;
mod browser;
mod canned;
mod chats;
mod client;
mod concurrency;
mod crash;
mod fuzz;
mod hardening;
mod helpers;
mod identity;
mod identity_browser;
mod inbox;
mod labels;
mod long_poll;
mod messages;
mod metrics;
mod notes;
mod openapi;
mod operations;
mod pg;
mod postgres;
mod privacy;
mod process;
mod ratings;
mod search;
mod shutdown;
mod trust;
mod uploads;
mod visitors;
mod webhooks;

//! Parley: a self-hosted customer-support live chat in one binary and one SQLite file.
#![forbid(unsafe_code)]

pub mod api;
pub mod assets;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod error;
pub mod held_request;
pub mod hub;
pub mod limits;
pub mod metrics;
pub mod model;
pub mod retention;
pub mod startup;
pub mod state;
pub mod store;
pub mod webhooks;

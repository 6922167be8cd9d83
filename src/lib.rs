//! Parley: a self-hosted customer-support live chat in one binary and one SQLite file.
//!
//! Layers, each using only those below it (see `docs/ARCHITECTURE.md`):
//! `cli` → `http` → `services` → `store`, `poll` → `domain`, `config`, `metrics`.
#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod poll;
pub mod services;
pub mod store;

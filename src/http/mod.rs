//! The HTTP layer: the route table, the handlers of the JSON API and its OpenAPI description,
//! the embedded web UI, the extractors and middleware, the error mapping, and the server that
//! runs them.

pub mod api;
pub mod assets;
pub mod body_deadline;
pub mod client_addr;
pub mod compression;
pub mod conn_limit;
pub mod error;
pub mod extract;
pub mod held_request;
pub mod openapi;
pub mod params;
pub mod request_metrics;
pub mod routes;
pub mod schemas;
pub mod server;
pub mod upload_spool;

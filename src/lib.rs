//! splitgate: an edge proxy for champion/challenger and shadow serving of ML models.
//!
//! The request path is `auth → throttle → split → forward → shadow → log` (see `proxy`). Pure
//! logic lives in modules without I/O: `split` (stable hash and bucket layout), `userid`,
//! `throttle`, `config` (shape and validation). Everything hot-reloadable is one immutable
//! `snapshot::Snapshot` behind one `ArcSwap`.
#![forbid(unsafe_code)]

pub mod accesslog;
pub mod admin;
pub mod app;
pub mod auth;
pub mod aws;
pub mod backend;
pub mod civil;
pub mod clientip;
pub mod config;
pub mod error;
pub mod events;
pub mod experiment;
pub mod fleet;
pub mod guard;
pub mod interleave;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod record;
pub mod reload;
pub mod reqid;
pub mod runtime;
pub mod series;
pub mod server;
pub mod shadow;
pub mod shared;
pub mod snapshot;
pub mod split;
pub mod stats;
pub mod tally;
#[cfg(test)]
mod testing;
pub mod throttle;
pub mod tls;
pub mod trace;
pub mod userid;

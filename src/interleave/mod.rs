//! Team-draft interleaving: one list per request merged from two ranking models' answers, each
//! position credited to the model that contributed it, so the user's clicks compare the models on
//! the same page — far fewer sessions than an A/B split needs to tell them apart.
//!
//! This module is the pure part, no I/O: the merge and its seed (`merge`), reading and writing
//! the answers' lists (`answer`), the team code that carries the credit to `/feedback` on any
//! replica (`code`), one merged page from two answers (`page`), the timing rule for the two
//! calls (`wait`), the arm's counters (`counters`), the facts the stages record (`facts`) and the
//! preference statistics (`stats`). The request-path stage that uses them is
//! `proxy::interleave`; the config is `[[split.variants]] interleave = [A, B]`
//! (`config::split`).

pub mod answer;
pub mod code;
pub mod counters;
pub mod facts;
pub mod merge;
pub mod page;
pub mod stats;
pub mod wait;

pub use counters::{Counters, Credit, Missing, Slot};
pub use facts::{Fact, Outcome};
pub use merge::{seed, team_draft, Pick, Team, Verdict};

#[cfg(test)]
mod sim_tests;

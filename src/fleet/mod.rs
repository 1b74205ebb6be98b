//! Fleet-wide truth (`[fleet]`): every replica's counters and one guard lease in one DynamoDB
//! table, so the numbers operators read and the guard's automatic decisions cover all replicas.
//!
//! - [`merge`] (pure): fleet views and the guard's ever-growing fleet samples from the replicas'
//!   cumulative records;
//! - [`lease`] (pure): the lease state machine — who may act;
//! - `store`: the DynamoDB edge (one put per interval, one query, the lease's conditional put);
//! - `task`: the loop that flushes, reads, renews, and publishes split layouts for feedback.

pub mod lease;
pub mod merge;

//! Parts of the `splitgate` command too large for `main.rs`; bin-only (not in the library).

pub mod serve;

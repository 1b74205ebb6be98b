//! What the interleaving stages learn about one request, written into `record::Facts` and read
//! only by the one recording step (the interleaving sink and the access log). Plain data.

use http::HeaderValue;

use super::counters::{Credit, Missing};
use super::merge::Team;
use crate::record::ModelError;

/// An interleaving arm's request or feedback.
#[derive(Debug, Clone)]
pub enum Fact {
    Served(Served),
    Feedback(Feedback),
}

/// How an arm's request was answered.
#[derive(Debug, Clone)]
pub struct Served {
    pub outcome: Outcome,
    /// Team B's call failed (no answer at all): why, for that model's error counters. Team A's
    /// is `Facts::model_error`, as for any variant's model.
    pub b_error: Option<ModelError>,
    /// The id the answer carries when splitgate minted it: `<minted>.<code>` (the caller's own
    /// id is never changed).
    pub request_id: Option<HeaderValue>,
    /// The team code, for `x-splitgate-teams`.
    pub code: Option<HeaderValue>,
}

/// The answer an arm's user got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Both lists, merged: `n` positions, B holding those in `b_mask`.
    Merged { n: usize, b_mask: u64 },
    /// One model's answer alone, unchanged: the other's was `missing` for this reason.
    Degraded { served: Team, missing: Missing },
    /// Neither model answered usably: the request failed like a plain variant's would.
    Failed,
}

impl Outcome {
    /// The access log's exposure fields of an arm's answer (appended to its JSON object):
    /// `,"interleave":"merged","teams":"ABBA…"` (the team of each position, A and B as in
    /// `interleave = [A, B]`), `,"interleave":"degraded","interleaveServed":"a",
    /// "interleaveMissing":"late"|"failed"|"unusable"`, or `,"interleave":"failed"`.
    pub fn log_fields(self, out: &mut String) {
        out.push_str(",\"interleave\":\"");
        out.push_str(self.as_str());
        out.push('"');
        match self {
            Outcome::Merged { n, b_mask } => {
                out.push_str(",\"teams\":\"");
                out.extend((0..n.min(64)).map(|i| if b_mask >> i & 1 == 1 { 'B' } else { 'A' }));
                out.push('"');
            }
            Outcome::Degraded { served, missing } => {
                out.push_str(",\"interleaveServed\":\"");
                out.push_str(served.as_str());
                out.push_str("\",\"interleaveMissing\":\"");
                out.push_str(missing.as_str());
                out.push('"');
            }
            Outcome::Failed => {}
        }
    }

    /// `merged`, `degraded` or `failed`: the `x-splitgate-interleave` header, the access log's
    /// `interleave` field and the metric's `outcome` label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Merged { .. } => "merged",
            Outcome::Degraded { .. } => "degraded",
            Outcome::Failed => "failed",
        }
    }
}

/// One feedback event for an arm's interleaved request (its team code verified).
#[derive(Debug, Clone, Copy)]
pub struct Feedback {
    /// `fnv1a64` of the request id the models saw: which request the clicks belong to.
    pub key: u64,
    pub b_mask: u64,
    /// Index into `FEEDBACK_EVENTS`.
    pub event: usize,
    pub credit: Credit,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(o: Outcome) -> String {
        let mut out = String::new();
        o.log_fields(&mut out);
        out
    }

    #[test]
    fn access_log_fields() {
        assert_eq!(fields(Outcome::Merged { n: 5, b_mask: 0b10110 }), r#","interleave":"merged","teams":"ABBAB""#);
        assert_eq!(
            fields(Outcome::Degraded { served: Team::A, missing: Missing::Late }),
            r#","interleave":"degraded","interleaveServed":"a","interleaveMissing":"late""#
        );
        assert_eq!(fields(Outcome::Failed), r#","interleave":"failed""#);
        // As part of a line, still one JSON object.
        let line = format!("{{\"requestId\":\"r\"{}}}", fields(Outcome::Merged { n: 2, b_mask: 0b01 }));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["teams"], "BA");
    }
}

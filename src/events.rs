//! The feedback-event vocabulary: the event kinds `POST /feedback` counts, the ramp's
//! `conversion_event`, and the `event` label of the feedback metric.
//!
//! It lives on its own so config validation and metrics both use it without config depending on
//! metrics. The wire names (`"click"`, …) are part of the API and the metric labels: never rename.

use serde::{Deserialize, Serialize};

/// A feedback event kind; anything a caller sends outside this list is counted as `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackEvent {
    Click,
    View,
    AddToCart,
    Purchase,
    Like,
    Dismiss,
    Other,
}

impl FeedbackEvent {
    /// Every kind, in index order (counters are arrays indexed by [`index`](Self::index)).
    pub const ALL: [FeedbackEvent; 7] = [
        FeedbackEvent::Click,
        FeedbackEvent::View,
        FeedbackEvent::AddToCart,
        FeedbackEvent::Purchase,
        FeedbackEvent::Like,
        FeedbackEvent::Dismiss,
        FeedbackEvent::Other,
    ];

    /// The wire names, indexed like [`ALL`](Self::ALL).
    pub const NAMES: [&'static str; 7] = {
        let mut names = [""; 7];
        let mut i = 0;
        while i < names.len() {
            names[i] = FeedbackEvent::ALL[i].as_str();
            i += 1;
        }
        names
    };

    /// The wire name, e.g. `"add_to_cart"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            FeedbackEvent::Click => "click",
            FeedbackEvent::View => "view",
            FeedbackEvent::AddToCart => "add_to_cart",
            FeedbackEvent::Purchase => "purchase",
            FeedbackEvent::Like => "like",
            FeedbackEvent::Dismiss => "dismiss",
            FeedbackEvent::Other => "other",
        }
    }

    /// Position in [`ALL`](Self::ALL) and [`NAMES`](Self::NAMES).
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The kind with this wire name, if any.
    pub fn from_name(name: &str) -> Option<FeedbackEvent> {
        FeedbackEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl std::fmt::Display for FeedbackEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_indices_and_serde_agree() {
        assert_eq!(FeedbackEvent::NAMES, ["click", "view", "add_to_cart", "purchase", "like", "dismiss", "other"]);
        for (i, e) in FeedbackEvent::ALL.into_iter().enumerate() {
            assert_eq!(e.index(), i);
            assert_eq!(FeedbackEvent::from_name(e.as_str()), Some(e));
            assert_eq!(serde_json::to_value(e).unwrap(), e.as_str());
        }
        assert_eq!(FeedbackEvent::from_name("Click"), None);
    }
}

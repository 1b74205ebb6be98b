//! Credentials for the request path, resolved off it. The standard chain (environment, profile,
//! web identity, ECS task role, EC2 role) is asked once at start-up and then again by a
//! background task ahead of each expiry, and the request path only reads the last answer from an
//! `ArcSwap`. The SDK's own lazy cache would refresh *in* the request that finds the credentials
//! about to expire, and every request behind it would wait; ECS task-role credentials rotate
//! about hourly, so that stall would come back every hour.
//!
//! A failed refresh keeps the previous credentials (AWS hands out new ones well before the old
//! ones expire) and is retried with backoff; it is logged, never surfaced to a request.

use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_credential_types::Credentials;
use aws_smithy_runtime_api::client::identity::Identity;

/// Refresh this long before expiry when the credentials live long enough for it.
const AHEAD: Duration = Duration::from_secs(5 * 60);
/// Never refresh more often than this (credentials that are already expired when handed out).
const MIN_INTERVAL: Duration = Duration::from_millis(200);
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// When to fetch again after getting credentials that expire at `expiry` (at `now`): five
/// minutes ahead for long-lived ones, half-way for short-lived ones, so a rotation always has
/// time for a retry or two. `None`: they never expire (static keys), no refresh.
pub fn refresh_after(now: SystemTime, expiry: Option<SystemTime>) -> Option<Duration> {
    let left = expiry?.duration_since(now).unwrap_or(Duration::ZERO);
    let wait = if left > 2 * AHEAD { left - AHEAD } else { left / 2 };
    Some(wait.max(MIN_INTERVAL))
}

/// The wait before retry number `attempt` (1, 2, …) of a failed refresh: doubling, capped.
pub fn retry_after(attempt: u32) -> Duration {
    FIRST_RETRY.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(MAX_RETRY)
}

struct State {
    /// The last credentials, as the signer takes them (an `Identity` wraps `Credentials` in an
    /// `Arc`, so handing it to a request is a reference count, not a copy of the keys).
    current: ArcSwapOption<Identity>,
    source: SharedCredentialsProvider,
}

/// A [`ProvideCredentials`] that answers from memory and refreshes itself in the background.
#[derive(Clone)]
pub struct Refreshing {
    state: Arc<State>,
}

impl std::fmt::Debug for Refreshing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loaded = self.state.current.load().is_some();
        f.debug_struct("Refreshing").field("loaded", &loaded).finish_non_exhaustive()
    }
}

impl Refreshing {
    /// Loads from `source` (waiting at most `first_wait` for it), then keeps the credentials
    /// fresh from a background task on the current tokio runtime for as long as a clone lives.
    pub async fn start(source: SharedCredentialsProvider, first_wait: Duration) -> Refreshing {
        let state = Arc::new(State { current: ArcSwapOption::empty(), source });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(refresh_loop(Arc::downgrade(&state), ready_tx));
        if tokio::time::timeout(first_wait, ready_rx).await.is_err() {
            tracing::warn!(
                waited_ms = first_wait.as_millis() as u64,
                "AWS credentials not loaded yet; SageMaker calls fail until they are (still trying)"
            );
        }
        Refreshing { state }
    }

    pub fn shared(&self) -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(self.clone())
    }

    /// The current credentials for signing, `None` until the first load succeeded.
    pub fn identity(&self) -> Option<Identity> {
        self.state.current.load().as_deref().cloned()
    }
}

impl ProvideCredentials for Refreshing {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let current = self.state.current.load();
        future::ProvideCredentials::ready(match current.as_deref().and_then(|i| i.data::<Credentials>()) {
            Some(c) => Ok(c.clone()),
            None => Err(CredentialsError::not_loaded("no AWS credentials from the standard chain yet")),
        })
    }
}

async fn refresh_loop(state: Weak<State>, ready: tokio::sync::oneshot::Sender<()>) {
    let mut ready = Some(ready);
    let mut failures = 0u32;
    loop {
        let Some(s) = state.upgrade() else { return };
        let fetched = s.source.provide_credentials().await;
        let wait = match fetched {
            Ok(creds) => {
                failures = 0;
                let wait = refresh_after(SystemTime::now(), creds.expiry());
                tracing::debug!(expires = ?creds.expiry(), next_in_ms = ?wait.map(|w| w.as_millis()), "AWS credentials refreshed");
                s.current.store(Some(Arc::new(Identity::from(creds))));
                if let Some(tx) = ready.take() {
                    let _ = tx.send(());
                }
                match wait {
                    Some(w) => w,
                    None => return,
                }
            }
            Err(e) => {
                failures += 1;
                let wait = retry_after(failures);
                tracing::warn!(
                    error = %aws_sdk_sagemakerruntime::error::DisplayErrorContext(&e),
                    attempt = failures,
                    retry_in_ms = wait.as_millis() as u64,
                    "refreshing AWS credentials failed; keeping the previous ones"
                );
                wait
            }
        };
        drop(s);
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    const T0: SystemTime = SystemTime::UNIX_EPOCH;
    fn at(secs: u64) -> Option<SystemTime> {
        Some(T0 + Duration::from_secs(secs))
    }

    #[test]
    fn refresh_schedule() {
        assert_eq!(refresh_after(T0, None), None, "static keys never refresh");
        // ECS task-role credentials: hours left, refreshed five minutes before expiry.
        assert_eq!(refresh_after(T0, at(6 * 3600)), Some(Duration::from_secs(6 * 3600 - 300)));
        assert_eq!(refresh_after(T0, at(601)), Some(Duration::from_secs(301)));
        // Short-lived: half-way, so a slow or failed refresh still has time before expiry.
        assert_eq!(refresh_after(T0, at(600)), Some(Duration::from_secs(300)));
        assert_eq!(refresh_after(T0, at(4)), Some(Duration::from_secs(2)));
        // Already expired when handed out: not a busy loop.
        assert_eq!(refresh_after(T0 + Duration::from_secs(10), at(4)), Some(MIN_INTERVAL));
        assert_eq!(refresh_after(T0, at(0)), Some(MIN_INTERVAL));
    }

    #[test]
    fn retry_backoff() {
        let secs: Vec<f64> = (1..=9).map(|a| retry_after(a).as_secs_f64()).collect();
        assert_eq!(secs, [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]);
        assert_eq!(retry_after(u32::MAX), MAX_RETRY);
        assert_eq!(retry_after(0), FIRST_RETRY);
    }

    /// Hands out key N on fetch N, each expiring 4 s after issue; fetch 2 fails.
    #[derive(Debug, Default, Clone)]
    struct Rotating {
        fetches: Arc<AtomicU32>,
    }

    impl ProvideCredentials for Rotating {
        fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
        where
            Self: 'a,
        {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            future::ProvideCredentials::ready(if n == 2 {
                Err(CredentialsError::provider_error("endpoint down"))
            } else {
                let expiry = SystemTime::now() + Duration::from_secs(4);
                Ok(Credentials::new(format!("AKID{n}"), "secret", Some("token".into()), Some(expiry), "test"))
            })
        }
    }

    async fn key(r: &Refreshing) -> String {
        r.provide_credentials().await.map(|c| c.access_key_id().to_owned()).unwrap_or_default()
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_ahead_of_expiry_and_keeps_the_old_keys_through_a_failure() {
        let source = Rotating::default();
        let r = Refreshing::start(SharedCredentialsProvider::new(source.clone()), Duration::from_secs(1)).await;
        assert_eq!(key(&r).await, "AKID1");
        // Half-way (2 s) the refresh fails: the first keys stay, a retry follows 0.5 s later.
        tokio::time::sleep(Duration::from_millis(2_100)).await;
        assert_eq!(source.fetches.load(Ordering::SeqCst), 2);
        assert_eq!(key(&r).await, "AKID1", "a failed refresh keeps the previous credentials");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(key(&r).await, "AKID3");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(key(&r).await, "AKID4");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_loaded_yet_is_an_error_not_a_wait() {
        #[derive(Debug)]
        struct Never;
        impl ProvideCredentials for Never {
            fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                future::ProvideCredentials::new(std::future::pending())
            }
        }
        let r = Refreshing::start(SharedCredentialsProvider::new(Never), Duration::from_millis(50)).await;
        assert!(r.provide_credentials().await.is_err());
    }
}

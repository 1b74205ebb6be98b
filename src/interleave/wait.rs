//! How long an interleaved request waits for its two models: the one timing rule, on plain
//! futures, so paused-time tests can pin it without sockets.
//!
//! Both calls start together. Once one of them settles with a *usable* answer (a 2xx whose list
//! could be read), the other gets at most `wait` (`interleave_wait_ms`) more; past that it is cut
//! off (`Late`) and the user gets the first answer alone. A call that settles unusable (an error,
//! a non-2xx, an answer without a list) leaves the other as the only hope, so that one runs to its
//! own deadline — exactly what a plain variant of that model would wait. Every call is bounded by
//! its model's `timeout_ms` (the futures passed here carry it), so the answer is never later than
//! the faster usable answer plus `wait`, and never later than the slower model's deadline.

use std::future::Future;
use std::time::Duration;

/// How one of the two calls ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled<T> {
    Done(T),
    /// Cut off: the other answered usably more than `wait` earlier.
    Late,
}

impl<T> Settled<T> {
    pub fn done(self) -> Option<T> {
        match self {
            Settled::Done(t) => Some(t),
            Settled::Late => None,
        }
    }
}

/// Runs `a` and `b` concurrently under the rule above. When both settle in the same instant, `a`
/// is looked at first (deterministic).
pub async fn both<T, A, B>(a: A, b: B, wait: Duration, usable: impl Fn(&T) -> bool) -> (Settled<T>, Settled<T>)
where
    A: Future<Output = T>,
    B: Future<Output = T>,
{
    tokio::pin!(a, b);
    tokio::select! {
        biased;
        x = &mut a => {
            let y = rest(b, usable(&x), wait).await;
            (Settled::Done(x), y)
        }
        y = &mut b => {
            let x = rest(a, usable(&y), wait).await;
            (x, Settled::Done(y))
        }
    }
}

async fn rest<T>(other: impl Future<Output = T>, first_usable: bool, wait: Duration) -> Settled<T> {
    if first_usable {
        match tokio::time::timeout(wait, other).await {
            Ok(t) => Settled::Done(t),
            Err(_) => Settled::Late,
        }
    } else {
        Settled::Done(other.await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::{sleep, Instant};

    /// A model call: answers `value` after `ms`, usable when positive.
    async fn call(ms: u64, value: i32) -> i32 {
        sleep(Duration::from_millis(ms)).await;
        value
    }

    async fn run(a: (u64, i32), b: (u64, i32), wait_ms: u64) -> ((Settled<i32>, Settled<i32>), u64) {
        let start = Instant::now();
        let out = both(call(a.0, a.1), call(b.0, b.1), Duration::from_millis(wait_ms), |v| *v > 0).await;
        (out, start.elapsed().as_millis() as u64)
    }

    #[tokio::test(start_paused = true)]
    async fn both_within_the_wait_are_both_kept() {
        assert_eq!(run((10, 1), (40, 2), 50).await, ((Settled::Done(1), Settled::Done(2)), 40));
        assert_eq!(run((40, 1), (10, 2), 50).await, ((Settled::Done(1), Settled::Done(2)), 40));
    }

    #[tokio::test(start_paused = true)]
    async fn the_slower_is_cut_off_at_the_first_answer_plus_the_wait() {
        assert_eq!(run((10, 1), (500, 2), 50).await, ((Settled::Done(1), Settled::Late), 60));
        assert_eq!(run((500, 1), (10, 2), 50).await, ((Settled::Late, Settled::Done(2)), 60));
        // wait = 0: only what is ready in the same instant.
        assert_eq!(run((10, 1), (10, 2), 0).await, ((Settled::Done(1), Settled::Done(2)), 10));
        assert_eq!(run((10, 1), (11, 2), 0).await, ((Settled::Done(1), Settled::Late), 10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unusable_first_answer_waits_for_the_other_to_its_deadline() {
        // A fails at 5 ms; B is the only answer left and takes 900 ms (its deadline bounds it).
        assert_eq!(run((5, -1), (900, 2), 50).await, ((Settled::Done(-1), Settled::Done(2)), 900));
        assert_eq!(run((900, 1), (5, -2), 50).await, ((Settled::Done(1), Settled::Done(-2)), 900));
        assert_eq!(run((5, -1), (7, -2), 50).await, ((Settled::Done(-1), Settled::Done(-2)), 7));
    }

    #[tokio::test(start_paused = true)]
    async fn a_tie_looks_at_a_first() {
        let order = std::sync::Mutex::new(Vec::new());
        let out = both(call(10, 1), call(10, 2), Duration::ZERO, |v| {
            order.lock().unwrap().push(*v);
            true
        })
        .await;
        assert_eq!(out, (Settled::Done(1), Settled::Done(2)));
        assert_eq!(*order.lock().unwrap(), [1]);
        assert_eq!(Settled::<i32>::Late.done(), None);
    }
}

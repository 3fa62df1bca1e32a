//! Keeping the rayon pool's workers awake through a loop of many short parallel products.
//!
//! An idle rayon worker yields to the OS for a few dozen rounds and then sleeps on a futex;
//! a small-batch training step hands it work every few tens of microseconds, so it sleeps
//! and is woken again all the time (at batch 32, ~17% of an epoch's samples were the
//! kernel's scheduler). [`with_workers_awake`] runs the loop while every other worker polls
//! for work instead.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Set in [`Keepers::state`] once the body runs: a keeper that starts later returns at once.
const CLOSED: usize = 1 << (usize::BITS - 1);
/// How long the body waits for the keepers to be taken by the other workers.
const START_WAIT: Duration = Duration::from_millis(5);
/// Polls between two yields to the OS, so that a core that is wanted elsewhere is handed
/// over now and then.
const POLLS_PER_OS_YIELD: u32 = 1 << 10;

/// Runs `body` on the calling worker while the other workers of its rayon pool poll for
/// work without sleeping; returns what `body` returns. Outside a pool, on a pool of one
/// thread, or with more threads than cores (polling would take a core from a worker with
/// work), `body` simply runs.
pub fn with_workers_awake<R>(body: impl FnOnce() -> R) -> R {
    match Keepers::for_current_pool(super::hardware_threads()) {
        Some(keepers) => keepers.around(body),
        None => body(),
    }
}

/// [`with_workers_awake`] when `poll`, else `body` alone: where a loop hands the other
/// workers nothing (every product too small to cut), a polling core only slows the one that
/// works.
pub fn with_workers_awake_if<R>(poll: bool, body: impl FnOnce() -> R) -> R {
    if poll {
        with_workers_awake(body)
    } else {
        body()
    }
}

struct Keepers {
    /// How many keepers started, with [`CLOSED`] set once the body runs.
    state: AtomicUsize,
    /// How many keeper jobs are executing now.
    running: AtomicUsize,
    expected: usize,
    done: AtomicBool,
}

impl Keepers {
    /// Keepers for the other workers of the current pool, on a machine of `cores` cores;
    /// `None` where they would not help.
    fn for_current_pool(cores: usize) -> Option<Arc<Keepers>> {
        let threads = rayon::current_num_threads();
        let in_pool = rayon::current_thread_index().is_some();
        (in_pool && (2..=cores).contains(&threads)).then(|| {
            Arc::new(Keepers {
                state: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                expected: threads - 1,
                done: AtomicBool::new(false),
            })
        })
    }

    /// Starts the keepers on the other workers and runs `body` on this one.
    fn around<R>(self: &Arc<Self>, body: impl FnOnce() -> R) -> R {
        for _ in 0..self.expected {
            let keeper = Arc::clone(self);
            rayon::spawn(move || keeper.keep_awake());
        }
        self.wait_for_start();
        let _done = SetOnDrop(&self.done);
        body()
    }

    /// One keeper, on another worker: takes the pool's jobs until the body is done.
    fn keep_awake(&self) {
        self.running.fetch_add(1, Ordering::AcqRel);
        let _stopped = Decrement(&self.running);
        let joined = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & CLOSED == 0).then_some(s + 1)
            });
        if joined.is_err() {
            // Taken only after the body began (by the body's own worker, say).
            return;
        }
        // Until every keeper runs, polling could take another keeper's job.
        while self.state.load(Ordering::Acquire) & CLOSED == 0 {
            std::hint::spin_loop();
        }
        let mut idle = 0u32;
        while !self.done.load(Ordering::Acquire) {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                idle = 0;
                continue;
            }
            idle += 1;
            if idle.is_multiple_of(POLLS_PER_OS_YIELD) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
    }

    /// Waits (briefly) until the keepers run on the other workers, then closes the door: a
    /// keeper job still queued would otherwise be taken by the body's worker (waiting in a
    /// `join`) and spin there, under the body it waits for.
    fn wait_for_start(&self) {
        let started = Instant::now();
        while self.state.load(Ordering::Acquire) < self.expected && started.elapsed() < START_WAIT {
            std::hint::spin_loop();
        }
        self.state.fetch_or(CLOSED, Ordering::AcqRel);
    }
}

/// Counts a keeper out when dropped.
struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Raises its flag when dropped, also while unwinding, so that the keepers stop.
struct SetOnDrop<'a>(&'a AtomicBool);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;
    use std::sync::mpsc;

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    /// Runs `f` on its own thread; a hang becomes a failure after 30 s.
    fn within_30s<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (send, recv) = mpsc::channel();
        std::thread::spawn(move || send.send(f()).unwrap());
        recv.recv_timeout(Duration::from_secs(30))
            .expect("with_workers_awake hung")
    }

    fn stopped(keepers: &Keepers) -> bool {
        let start = Instant::now();
        while keepers.running.load(Ordering::Acquire) != 0 {
            if start.elapsed() > Duration::from_secs(10) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }

    fn parallel_sum() -> u64 {
        (0..100_000u32)
            .into_par_iter()
            .with_max_len(1000)
            .map(u64::from)
            .sum()
    }

    const SUM: u64 = 100_000 * 99_999 / 2;

    /// The body's result, and the keepers (if any), from a pool of `threads`.
    fn awake_sum(threads: usize, cores: usize) -> (u64, Option<Arc<Keepers>>) {
        within_30s(move || {
            pool(threads).install(|| {
                let keepers = Keepers::for_current_pool(cores);
                let sum = match &keepers {
                    Some(k) => k.around(parallel_sum),
                    None => parallel_sum(),
                };
                (sum, keepers)
            })
        })
    }

    #[test]
    fn the_body_runs_its_parallel_work_and_every_keeper_stops_after_it() {
        for threads in [1, 2, 3] {
            let (sum, keepers) = awake_sum(threads, usize::MAX);
            assert_eq!(sum, SUM, "{threads} threads");
            assert_eq!(keepers.is_some(), threads > 1, "{threads} threads");
            if let Some(k) = keepers {
                assert!(stopped(&k), "{threads} threads: a keeper still polls");
            }
        }
        assert_eq!(with_workers_awake(parallel_sum), SUM);
        assert_eq!(pool(2).install(|| with_workers_awake(parallel_sum)), SUM);
    }

    #[test]
    fn outside_a_pool_or_on_more_threads_than_cores_no_keeper_starts() {
        assert!(Keepers::for_current_pool(usize::MAX).is_none());
        assert!(awake_sum(3, 2).1.is_none());
        assert!(awake_sum(2, 2).1.is_some());
    }

    /// A keeper that no other worker took in time stays queued; the body's own worker may
    /// take it while it waits in a `join`, and it must return at once instead of spinning
    /// under the body.
    #[test]
    fn a_keeper_taken_late_returns_at_once() {
        for threads in [2, 3] {
            let (sum, keepers) = within_30s(move || {
                pool(threads).install(|| {
                    let (busy, started) = mpsc::channel();
                    rayon::spawn(move || {
                        busy.send(()).unwrap();
                        std::thread::sleep(START_WAIT * 40);
                    });
                    started.recv().unwrap();
                    let keepers = Keepers::for_current_pool(usize::MAX).unwrap();
                    (keepers.around(parallel_sum), keepers)
                })
            });
            assert_eq!(sum, SUM, "{threads} threads");
            let joined = keepers.state.load(Ordering::Acquire) & !CLOSED;
            assert!(
                joined < threads - 1,
                "{threads} threads: the busy worker joined"
            );
            assert!(stopped(&keepers), "{threads} threads");
        }
    }

    #[test]
    fn a_panicking_body_stops_the_keepers() {
        let (outcome, keepers) = within_30s(|| {
            pool(2).install(|| {
                let keepers = Keepers::for_current_pool(usize::MAX).unwrap();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    keepers.around(|| {
                        parallel_sum();
                        panic!("body failed")
                    })
                }));
                (outcome.is_err(), keepers)
            })
        });
        assert!(outcome, "the panic reaches the caller");
        assert!(stopped(&keepers));
    }
}

//! The one thread pool a CPU step computes on: candle's own.
//!
//! candle runs its elementwise ops on its barrier pool (the calling thread and `n - 1` workers)
//! whose workers spin for a while after each op, waiting for the next. Work handed to rayon's
//! pool in between (a matmul, the optimiser's pass) would then run on two more threads that
//! compete with the spinning ones for the same cores. So oai's own parallel kernels run on
//! candle's pool too. How work is split between threads never changes a bit: every element
//! is computed by one thread, in the same order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Threads of the pool, the calling thread included.
pub fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

thread_local! {
    /// Whether this thread is running units handed to the pool.
    static IN_POOL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` on `units` indices spread over the pool (the calling thread takes part). Work
/// handed to the pool from inside `f` runs on the thread that hands it (candle's pool is not
/// reentrant); `f` must not run candle's own parallel ops, which would wait on the pool's lock.
pub fn for_each_index(units: usize, f: impl Fn(usize) + Sync) {
    if units <= 1 || threads() == 1 || in_pool() {
        return (0..units).for_each(f);
    }
    let _inside = Inside::enter();
    candle_core::utils::barrier_pool().execute_chunked(units, |range| {
        // the pool's workers mark themselves too, so their nested calls run inline
        IN_POOL.with(|p| p.set(true));
        range.for_each(&f)
    });
}

/// `first()` on the calling thread while the pool's other threads start on `f(0), ...
/// f(units - 1)`; once `first` returns, the calling thread takes the units not yet started.
/// Serial work (the next batch's loading) thus runs beside parallel work that does not depend
/// on it, instead of leaving the other threads idle.
pub fn map_beside<A: Send, R: Send>(
    first: impl FnOnce() -> A + Send,
    units: usize,
    f: impl Fn(usize) -> R + Sync,
) -> (A, Vec<R>) {
    if threads() == 1 || in_pool() {
        return (first(), (0..units).map(f).collect());
    }
    let pool = candle_core::utils::barrier_pool();
    // candle's pool numbers its workers 0..n and hands the calling thread n
    let caller = pool.n_workers();
    let first = Mutex::new(Some(first));
    let first_out = Mutex::new(None);
    let slots: Vec<Mutex<Option<R>>> = (0..units).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let _inside = Inside::enter();
    pool.execute(|thread| {
        IN_POOL.with(|p| p.set(true));
        if thread == caller {
            if let Some(first) = lock(&first).take() {
                *lock(&first_out) = Some(first());
            }
        }
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= units {
                break;
            }
            *lock(&slots[i]) = Some(f(i));
        }
    });
    let first = first_out
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .expect("the calling thread ran first");
    (first, collect(slots))
}

/// Whether this thread is already running units handed to the pool.
fn in_pool() -> bool {
    IN_POOL.with(|p| p.get())
}

/// Marks the calling thread as running pool units until dropped (even when a unit panics).
struct Inside;

impl Inside {
    fn enter() -> Self {
        IN_POOL.with(|p| p.set(true));
        Inside
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        IN_POOL.with(|p| p.set(false));
    }
}

/// Run `f` on every part, each part on one thread of the pool.
pub fn for_each_part<T: Send>(parts: Vec<T>, f: impl Fn(T) + Sync) {
    let slots: Vec<Mutex<Option<T>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
    for_each_index(slots.len(), |i| {
        if let Some(part) = lock(&slots[i]).take() {
            f(part);
        }
    });
}

/// `f(0), f(1), ... f(units - 1)`, computed on the pool.
pub fn map<R: Send>(units: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let slots: Vec<Mutex<Option<R>>> = (0..units).map(|_| Mutex::new(None)).collect();
    for_each_index(units, |i| *lock(&slots[i]) = Some(f(i)));
    collect(slots)
}

/// The results of units that all ran.
fn collect<R>(slots: Vec<Mutex<Option<R>>>) -> Vec<R> {
    slots
        .into_iter()
        .map(|s| {
            s.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every unit ran")
        })
        .collect()
}

/// `f(start, chunk)` on `data` cut into one chunk per thread of the pool (`start` is the
/// chunk's first index); one chunk on this thread when `data` is shorter than `min_parallel`.
pub fn for_each_chunk<T: Send>(
    data: &mut [T],
    min_parallel: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    let len = match data.len() < min_parallel {
        true => data.len().max(1),
        false => data.len().div_ceil(threads()),
    };
    let parts = data.chunks_mut(len).enumerate().collect();
    for_each_part(parts, |(i, chunk)| f(i * len, chunk));
}

/// The slot's contents, whether or not a unit panicked while holding it.
fn lock<T>(slot: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    slot.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once() {
        let mut out = vec![0u32; 1000];
        let parts: Vec<_> = out.chunks_mut(7).enumerate().collect();
        for_each_part(parts, |(i, chunk)| chunk.fill(i as u32 + 1));
        for (j, v) in out.iter().enumerate() {
            assert_eq!(*v, j as u32 / 7 + 1);
        }
        let hits: Vec<_> = (0..50)
            .map(|_| std::sync::atomic::AtomicU32::new(0))
            .collect();
        for_each_index(hits.len(), |i| {
            hits[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
        assert!(hits
            .iter()
            .all(|h| h.load(std::sync::atomic::Ordering::Relaxed) == 1));
        assert_eq!(
            map(20, |i| i * i),
            (0..20).map(|i| i * i).collect::<Vec<_>>()
        );
        for len in [0, 5, 100_000] {
            let mut data = vec![0usize; len];
            for_each_chunk(&mut data, 1000, |start, chunk| {
                for (i, x) in chunk.iter_mut().enumerate() {
                    *x = start + i;
                }
            });
            assert!(data.iter().enumerate().all(|(i, x)| *x == i), "{len}");
        }
    }

    /// `first` runs once, on the calling thread (so it may hold what cannot leave it), and
    /// every unit runs once beside it; pool work handed over inside `first` runs inline.
    #[test]
    fn first_runs_on_the_calling_thread_beside_the_units() {
        let me = std::thread::current().id();
        let (first, squares) = map_beside(
            || {
                let inner = map(10, |i| i + 1);
                (std::thread::current().id(), inner)
            },
            100,
            |i| i * i,
        );
        assert_eq!(first.0, me);
        assert_eq!(first.1, (1..=10).collect::<Vec<_>>());
        assert_eq!(squares, (0..100).map(|i| i * i).collect::<Vec<_>>());
        let (none, empty) = map_beside(|| 7, 0, |i| i);
        assert_eq!((none, empty), (7, Vec::<usize>::new()));
        assert!(!in_pool(), "the flag is cleared after the call");
    }

    /// Work handed to the pool from inside the pool runs inline instead of waiting on the
    /// pool's lock forever.
    #[test]
    fn nested_use_runs_inline() {
        let hits: Vec<_> = (0..64)
            .map(|_| std::sync::atomic::AtomicU32::new(0))
            .collect();
        for_each_index(8, |i| {
            for_each_index(8, |j| {
                hits[i * 8 + j].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            });
        });
        assert!(hits
            .iter()
            .all(|h| h.load(std::sync::atomic::Ordering::Relaxed) == 1));
    }
}

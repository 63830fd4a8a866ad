//! The one thread pool a CPU step computes on: candle's own.
//!
//! candle runs its elementwise ops on its barrier pool (the calling thread and `n - 1` workers)
//! whose workers spin for a while after each op, waiting for the next. Work handed to rayon's
//! pool in between (a matmul, the optimiser's pass) would then run on two more threads that
//! compete with the spinning ones for the same cores. So oai's own parallel kernels run on
//! candle's pool too. How work is split between threads never changes a bit: every element
//! is computed by one thread, in the same order.

use std::sync::Mutex;

/// Threads of the pool, the calling thread included.
pub(crate) fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

thread_local! {
    /// Whether this thread is running units handed to the pool.
    static IN_POOL: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Run `f` on `units` indices spread over the pool (the calling thread takes part). Work
/// handed to the pool from inside `f` runs on the thread that hands it (candle's pool is not
/// reentrant); `f` must not run candle's own parallel ops, which would wait on the pool's lock.
pub(crate) fn for_each_index(units: usize, f: impl Fn(usize) + Sync) {
    if units <= 1 || threads() == 1 || IN_POOL.with(|p| p.get()) {
        return (0..units).for_each(f);
    }
    /// Clears the flag even when a unit panics.
    struct Inside;
    impl Drop for Inside {
        fn drop(&mut self) {
            IN_POOL.with(|p| p.set(false));
        }
    }
    IN_POOL.with(|p| p.set(true));
    let _inside = Inside;
    candle_core::utils::barrier_pool().execute_chunked(units, |range| {
        // the pool's workers mark themselves too, so their nested calls run inline
        IN_POOL.with(|p| p.set(true));
        range.for_each(&f)
    });
}

/// Run `f` on every part, each part on one thread of the pool.
pub(crate) fn for_each_part<T: Send>(parts: Vec<T>, f: impl Fn(T) + Sync) {
    let slots: Vec<Mutex<Option<T>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
    for_each_index(slots.len(), |i| {
        if let Some(part) = lock(&slots[i]).take() {
            f(part);
        }
    });
}

/// `f(0), f(1), ... f(units - 1)`, computed on the pool.
pub(crate) fn map<R: Send>(units: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let slots: Vec<Mutex<Option<R>>> = (0..units).map(|_| Mutex::new(None)).collect();
    for_each_index(units, |i| *lock(&slots[i]) = Some(f(i)));
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
pub(crate) fn for_each_chunk<T: Send>(
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

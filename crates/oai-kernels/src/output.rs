//! Kernel outputs written without being zeroed first. A zero-filled output costs a pass over
//! fresh memory (`calloc`'s memset) before the kernel writes every element anyway: on the
//! transformer, megabytes a step on the calling thread while the pool's worker waits. Here a
//! kernel gets its part of the output as [`Slots`], writes each element once through
//! [`write_each`] (or row by row through `write_rows`) and hands back the written part; the
//! output is only taken as values once every part came back whole, which is checked (a part
//! handed back is the very memory given out, and only `write_each` turns slots into values).
//! So no kernel needs `unsafe`, and one that leaves an element unwritten panics instead of
//! reading uninitialised memory.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicBool, Ordering};

/// A kernel's part of an output before it is written.
pub type Slots = [MaybeUninit<f32>];

/// `dst` with each element written from `values` in order, as values. Panics when `values`
/// ends before `dst` does.
pub fn write_each(dst: &mut Slots, values: impl IntoIterator<Item = f32>) -> &mut [f32] {
    let mut written = 0;
    for (d, v) in dst.iter_mut().zip(values) {
        d.write(v);
        written += 1;
    }
    assert_eq!(written, dst.len(), "a kernel wrote part of its output");
    // SAFETY: the loop above wrote every element of `dst`.
    #[allow(unsafe_code)]
    unsafe {
        assume_written(dst)
    }
}

/// `dst` written row by row (rows of `d`): `row(i, slots)` writes row `i` and hands it back.
/// Panics when a row comes back as other memory than it was given.
pub(super) fn write_rows(
    dst: &mut Slots,
    d: usize,
    mut row: impl for<'r> FnMut(usize, &'r mut Slots) -> &'r mut [f32],
) -> &mut [f32] {
    let [dst] = write_rows_n([dst], d, |i, [slots]| [row(i, slots)]);
    dst
}

/// [`write_rows`] over `N` outputs of one length in step: `row(i, slots)` writes row `i` of
/// each and hands them back.
pub(super) fn write_rows_n<'a, const N: usize>(
    mut dsts: [&'a mut Slots; N],
    d: usize,
    mut row: impl for<'r> FnMut(usize, [&'r mut Slots; N]) -> [&'r mut [f32]; N],
) -> [&'a mut [f32]; N] {
    let (d, len) = (d.max(1), dsts.first().map_or(0, |s| s.len()));
    assert!(dsts.iter().all(|s| s.len() == len), "outputs of one length");
    for (i, start) in (0..len).step_by(d).enumerate() {
        let end = (start + d).min(len);
        let rows = dsts.each_mut().map(|s| &mut s[start..end]);
        let given = rows.each_ref().map(|r| (r.as_ptr().cast::<f32>(), r.len()));
        let written = row(i, rows);
        let whole = written.iter().zip(given).all(|(w, g)| is_whole(w, g));
        assert!(whole, "a kernel wrote part of a row");
    }
    dsts.map(|dst| {
        // SAFETY: every row of `dst` came back from `row` as a `&mut [f32]` over its own
        // memory, which only exists once its elements are values.
        #[allow(unsafe_code)]
        unsafe {
            assume_written(dst)
        }
    })
}

/// `N` outputs of `len` elements, rows of `d`, split between the pool's threads by whole rows
/// as [`super::rows::by_rows`] splits them: `fill(first_row, parts)` writes its parts and
/// hands them back. Panics when a part comes back as other memory than it was given.
pub(super) fn by_rows<const N: usize>(
    len: usize,
    d: usize,
    fill: impl for<'a> Fn(usize, [&'a mut Slots; N]) -> [&'a mut [f32]; N] + Sync,
) -> [Vec<f32>; N] {
    filled(len, |parts, run| super::rows::by_rows(parts, d, run), fill)
}

/// One output of `len` elements cut into one chunk per thread of the pool (one chunk below
/// `min_parallel` elements), as [`crate::pool::for_each_chunk`] cuts it: `fill(start, part)`
/// writes its part and hands it back. Panics when a part comes back as other memory.
pub fn by_chunks(
    len: usize,
    min_parallel: usize,
    fill: impl for<'a> Fn(usize, &'a mut Slots) -> &'a mut [f32] + Sync,
) -> Vec<f32> {
    let [out] = filled(
        len,
        |[slots], run| {
            crate::pool::for_each_chunk(slots, min_parallel, |start, part| run(start, [part]))
        },
        |start, [part]| [fill(start, part)],
    );
    out
}

/// `N` outputs of `len` elements: `split(slots, run)` cuts their slots into parts and calls
/// `run(at, parts)` on each (`at`: what `fill` is told of the part's place), which has `fill`
/// write them and checks that they came back whole; the outputs are values once all did.
fn filled<const N: usize>(
    len: usize,
    split: impl for<'s> FnOnce([&'s mut Slots; N], &(dyn Fn(usize, [&mut Slots; N]) + Sync)),
    fill: impl for<'a> Fn(usize, [&'a mut Slots; N]) -> [&'a mut [f32]; N] + Sync,
) -> [Vec<f32>; N] {
    let mut outs: [Vec<f32>; N] = std::array::from_fn(|_| Vec::with_capacity(len));
    let whole = AtomicBool::new(true);
    let run = |at: usize, parts: [&mut Slots; N]| {
        let given = parts
            .each_ref()
            .map(|p| (p.as_ptr().cast::<f32>(), p.len()));
        let written = fill(at, parts);
        if !written.iter().zip(given).all(|(w, g)| is_whole(w, g)) {
            whole.store(false, Ordering::Relaxed);
        }
    };
    split(
        outs.each_mut().map(|o| &mut o.spare_capacity_mut()[..len]),
        &run,
    );
    assert!(whole.into_inner(), "a kernel wrote part of its output");
    for out in &mut outs {
        // SAFETY: the two splits above (`rows::by_rows`, `pool::for_each_chunk`) cut all of
        // the first `len` slots into parts, and every part came back from `fill` as a
        // `&mut [f32]` over its own memory, so every element is a value.
        #[allow(unsafe_code)]
        unsafe {
            out.set_len(len)
        }
    }
    outs
}

/// Whether `written` is the memory `(start, len)` describes.
fn is_whole(written: &[f32], (start, len): (*const f32, usize)) -> bool {
    std::ptr::eq(written.as_ptr(), start) && written.len() == len
}

/// `slots` as values.
///
/// # Safety
/// Every element of `slots` has been written.
#[allow(unsafe_code)]
unsafe fn assume_written(slots: &mut Slots) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and the caller promises each is written.
    unsafe { &mut *(slots as *mut Slots as *mut [f32]) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_written_by_rows_and_by_chunks() {
        let len = (1 << 15) + 3 * 7;
        let [a, b] = by_rows(len, 7, |first, [a, b]| {
            let a = write_rows(a, 7, |i, row| {
                write_each(row, (0..7).map(|j| ((first + i) * 7 + j) as f32))
            });
            [a, write_each(b, std::iter::repeat(2.0))]
        });
        assert!(a.iter().enumerate().all(|(i, &v)| v == i as f32));
        assert!(b.iter().all(|&v| v == 2.0));
        let c = by_chunks(len, 1 << 10, |start, part| {
            write_each(part, (start..).map(|i| i as f32 * 0.5))
        });
        assert!(c.iter().enumerate().all(|(i, &v)| v == i as f32 * 0.5));
        assert!(by_chunks(0, 1, |_, part| write_each(part, std::iter::empty())).is_empty());
    }

    #[test]
    #[should_panic(expected = "a kernel wrote part of its output")]
    fn a_short_write_panics() {
        by_chunks(100, 1000, |_, part| write_each(part, [1.0; 99]));
    }

    #[test]
    #[should_panic(expected = "a kernel wrote part of a row")]
    fn a_row_handed_back_from_elsewhere_panics() {
        by_chunks(8, 1000, |_, part| {
            // a row the kernel never wrote, handed back as other memory
            write_rows(part, 4, |_, _| Box::leak(vec![0f32; 4].into_boxed_slice()))
        });
    }
}

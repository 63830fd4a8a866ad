//! Progress on stderr for long operations: a bar when the length is known, a spinner when it
//! is not. Both step aside (draw nothing) when stderr is not a terminal, so scripts and logs
//! see only the command's own lines.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar over `len` items of `what` (hidden when stderr is not a terminal).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> ");
    ProgressBar::new(len)
        .with_style(style)
        .with_message(what.to_string())
}

/// A spinner saying `what` is going on (hidden when stderr is not a terminal).
pub fn spinner(what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let p = ProgressBar::new_spinner().with_message(what.to_string());
    p.enable_steady_tick(Duration::from_millis(120));
    p
}

//! The bench report: every side-by-side figure the benches print (ours next to the baseline
//! it is measured against in the same run) is also a [`Row`]. With `OAI_BENCH_REPORT=FILE`
//! set, a bench appends its rows to FILE as JSON lines and skips criterion's own
//! measurements; `scripts/bench_report.sh` runs every bench that way and turns the rows into
//! one table ([`markdown`]), printed and written to `docs/benchmarks.md`.

use serde::{Deserialize, Serialize};
use std::io::Write as _;

/// The environment variable naming the file rows are appended to.
pub const REPORT_ENV: &str = "OAI_BENCH_REPORT";

/// One measurement of ours next to its baseline, both from the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// The bench that measured it (`data`, `train`, `rag`, ...).
    pub bench: String,
    /// What is compared, e.g. `logging overhead: MLP 784-1024-1024-10, batch 64`.
    pub measure: String,
    /// Ours.
    pub ours: Side,
    /// What ours is measured against.
    pub baseline: Side,
    /// Whether a larger value is better (throughput) or a smaller one (latency, bytes).
    pub higher_is_better: bool,
    /// The ratio ours / baseline an issue asks for: at least this when higher is better, at
    /// most this otherwise.
    pub target: Option<f64>,
}

/// One side of a [`Row`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    /// What was measured, e.g. `logging on`.
    pub label: String,
    /// The value.
    pub value: f64,
    /// Its unit, e.g. `steps/s`.
    pub unit: String,
}

impl Side {
    /// A side measuring `label` at `value` `unit`.
    pub fn new(label: impl Into<String>, value: f64, unit: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            value,
            unit: unit.into(),
        }
    }
}

impl Row {
    /// A row of `bench` comparing `ours` with `baseline`, without a target.
    pub fn new(
        bench: &str,
        measure: impl Into<String>,
        ours: Side,
        baseline: Side,
        higher_is_better: bool,
    ) -> Self {
        Self {
            bench: bench.into(),
            measure: measure.into(),
            ours,
            baseline,
            higher_is_better,
            target: None,
        }
    }

    /// The same row with the ratio an issue asks for.
    pub fn target(mut self, ratio: f64) -> Self {
        self.target = Some(ratio);
        self
    }

    /// Ours / baseline.
    pub fn ratio(&self) -> f64 {
        self.ours.value / self.baseline.value
    }

    /// Whether the ratio meets the target (`None` without one).
    pub fn meets_target(&self) -> Option<bool> {
        let t = self.target?;
        Some(if self.higher_is_better {
            self.ratio() >= t
        } else {
            self.ratio() <= t
        })
    }
}

/// Whether rows are being recorded: then the benches skip criterion's measurements.
pub fn recording() -> bool {
    std::env::var_os(REPORT_ENV).is_some()
}

/// Append `row` to the report file when [`recording`]; a file that cannot be written panics
/// (a bench has no one else to tell).
pub fn record(row: Row) {
    let Some(path) = std::env::var_os(REPORT_ENV) else {
        return;
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening the report file {path:?}: {e}"));
    let line = serde_json::to_string(&row).expect("a row serialises");
    writeln!(f, "{line}").unwrap_or_else(|e| panic!("writing the report file {path:?}: {e}"));
}

/// Parse the JSON lines of a report file (blank lines skipped).
pub fn parse(text: &str) -> Result<Vec<Row>, serde_json::Error> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect()
}

fn value(v: f64) -> String {
    let a = v.abs();
    if a >= 1000.0 || a == a.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.4}")
    }
}

fn side(s: &Side) -> String {
    match s.unit.as_str() {
        "" => format!("{} ({})", value(s.value), s.label),
        unit => format!("{} {unit} ({})", value(s.value), s.label),
    }
}

/// One Markdown table of `rows` in their order: ours, the baseline, the ratio and the target.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| bench | measure | ours | baseline | ours / baseline | target |\n\
         |---|---|---:|---:|---:|---|\n",
    );
    for r in rows {
        let target = match (r.target, r.meets_target()) {
            (Some(t), Some(met)) => format!(
                "{} {t}x: {}",
                if r.higher_is_better { ">=" } else { "<=" },
                if met { "met" } else { "**missed**" }
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.3}x ({}) | {} |\n",
            r.bench,
            r.measure,
            side(&r.ours),
            side(&r.baseline),
            r.ratio(),
            if r.higher_is_better {
                "higher is better"
            } else {
                "lower is better"
            },
            target
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logging(on: f64) -> Row {
        Row::new(
            "train",
            "logging overhead: MLP",
            Side::new("logging on", on, "steps/s"),
            Side::new("logging off", 50.0, "steps/s"),
            true,
        )
        .target(0.95)
    }

    #[test]
    fn rows_round_trip_through_json_lines_and_targets_are_judged() {
        let rows = vec![
            logging(48.0),
            logging(40.0),
            Row::new(
                "rag",
                "search p50",
                Side::new("HNSW", 2.0, "ms"),
                Side::new("exact scan", 75.0, "ms"),
                false,
            ),
        ];
        let text: String = rows
            .iter()
            .map(|r| serde_json::to_string(r).unwrap() + "\n\n")
            .collect();
        assert_eq!(parse(&text).unwrap(), rows);
        assert_eq!(rows[0].meets_target(), Some(true));
        assert_eq!(rows[1].meets_target(), Some(false));
        assert_eq!(rows[2].meets_target(), None);
        let table = markdown(&rows);
        assert_eq!(table.lines().count(), 2 + rows.len(), "{table}");
        assert!(table.contains("| 48 steps/s (logging on) | 50 steps/s (logging off) | 0.960x (higher is better) | >= 0.95x: met |"), "{table}");
        assert!(
            table.contains("0.800x (higher is better) | >= 0.95x: **missed** |"),
            "{table}"
        );
        assert!(
            table.contains("| 2 ms (HNSW) | 75 ms (exact scan) | 0.027x (lower is better) |  |"),
            "{table}"
        );
        assert!(parse("{\"bench\": 1}").is_err());
    }
}

//! Criterion benches of oai; see `benches/`.

//! Queries per client a knowledge server answers: a token bucket per client address, so one
//! client's flood is refused (`RESOURCE_EXHAUSTED`) while every other client is answered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Clients remembered at most; past it, the buckets that have refilled (clients quiet for a
/// while) are forgotten first, so a sweep of addresses cannot grow the table without bound.
const MAX_CLIENTS: usize = 10_000;

/// How many queries a server answers per client address.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Queries a second, sustained.
    pub per_second: f64,
    /// Queries at once after a quiet spell.
    pub burst: u32,
}

impl Default for RateLimit {
    /// 50 queries a second per client, bursts of 100.
    fn default() -> Self {
        Self {
            per_second: 50.0,
            burst: 100,
        }
    }
}

impl RateLimit {
    /// No limit (a server only you reach, a benchmark).
    pub fn none() -> Self {
        Self {
            per_second: f64::INFINITY,
            burst: u32::MAX,
        }
    }
}

/// One token bucket per client address.
#[derive(Debug)]
pub(crate) struct Buckets {
    limit: RateLimit,
    clients: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl Buckets {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `client` may ask one more query now (taking a token if so).
    pub(crate) fn admit(&self, client: IpAddr, now: Instant) -> bool {
        let (rate, burst) = (self.limit.per_second, f64::from(self.limit.burst));
        if rate.is_infinite() {
            return true;
        }
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&client) {
            clients.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = clients.entry(client).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_admits_its_burst_then_its_rate_per_client() {
        let b = Buckets::new(RateLimit {
            per_second: 10.0,
            burst: 3,
        });
        let (one, two) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        let admitted = (0..10).filter(|_| b.admit(one, t0)).count();
        assert_eq!(admitted, 3, "the burst, then nothing at the same instant");
        assert!(b.admit(two, t0), "another client has its own bucket");
        assert!(
            !b.admit(one, t0 + Duration::from_millis(50)),
            "half a token"
        );
        assert!(
            b.admit(one, t0 + Duration::from_millis(110)),
            "a token a tenth of a second"
        );
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..10).filter(|_| b.admit(one, later)).count(),
            3,
            "refilled to the burst only"
        );
        let open = Buckets::new(RateLimit::none());
        assert!((0..10_000).all(|_| open.admit(one, t0)));
    }
}

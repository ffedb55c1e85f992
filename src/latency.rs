//! A latency histogram for `/metrics`, shared by the parts that time
//! network round trips (upstream connects, ClickHouse inserts).

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use std::time::Duration;

#[derive(Debug)]
pub struct Latency(pub Histogram);

impl Default for Latency {
    fn default() -> Self {
        // 0.5 ms .. 16 s: a local server answers in well under a
        // millisecond, a timeout is seconds.
        Latency(Histogram::new(exponential_buckets(0.0005, 2.0, 16)))
    }
}

impl Latency {
    pub fn observe(&self, d: Duration) {
        self.0.observe(d.as_secs_f64());
    }
}

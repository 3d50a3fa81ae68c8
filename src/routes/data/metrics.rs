//! The live queries' figures, read at scrape time: subscriptions open, and how many times
//! a transaction woke one (a subscription whose attributes the transaction did not touch
//! is never woken, so this counts re-evaluations).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::platform::state::AppState;
use crate::storage::facts::Facts;

#[derive(Debug)]
struct LiveCollector(Facts);

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let live = self.0.live();
        ConstGauge::new(i64::try_from(live.count()).unwrap_or(i64::MAX)).encode(
            encoder.encode_descriptor(
                "data_subscriptions",
                "Live queries open on /api/data",
                None,
                MetricType::Gauge,
            )?,
        )?;
        ConstCounter::new(live.woken()).encode(encoder.encode_descriptor(
            "data_subscription_wakeups",
            "Times a transaction woke a live query to check its answer",
            None,
            MetricType::Counter,
        )?)?;
        Ok(())
    }
}

pub fn register(app: &AppState) {
    let facts = app.store.facts.clone();
    app.metrics.register(|registry| {
        registry.register_collector(Box::new(LiveCollector(facts)));
    });
}

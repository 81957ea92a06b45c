//! The chart's operations pack against a running operator: the Grafana dashboard and
//! the alerts query only metrics the operator exports, and `kvop_objects` counts objects
//! by health. (`promtool test rules` checks the alerts' logic and the apiserver the
//! rendered PrometheusRule and dashboard, in tests/env/helm-test.sh.)

mod support;

use serde_json::json;
use support::k8s::{Operator, plane, wait_until};
use support::resources::*;

/// Every metric the chart's Grafana dashboard and alerts query is one a running operator
/// exports: a renamed or dropped metric breaks this test, not a dashboard in production.
/// (`promtool test rules` checks the alerts' logic, tests/env/helm-test.sh.)
#[tokio::test]
async fn the_dashboard_and_the_alerts_query_only_metrics_the_operator_exports() {
    let s = setup("scraped").await;
    let operator = Operator::start(&plane().kubeconfig, &s.namespace, &s.nats.url(), &[]);
    create(&s.buckets, &bucket("b", json!({}))).await;
    create(&s.entries, &entry("e", "b", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "e", true, None).await;
    // A failure, so that the failure counter has a series.
    create(&s.entries, &entry("orphan", "nowhere", "k", "v", json!({}))).await;
    wait_entry(&s.entries, "orphan", false, Some("BucketNotReady")).await;
    // A failure is counted when its reconcile returns, just after its status write.
    let scraped = wait_until("the failure counted", WAIT, || async {
        let scraped = operator.metrics().await;
        scraped
            .contains("kvop_reconcile_failures_total")
            .then_some(scraped)
    })
    .await;
    let exported: std::collections::BTreeSet<&str> = scraped
        .lines()
        .filter(|line| line.starts_with("kvop_"))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/kvop/files");
    for file in ["dashboard.json", "alerts.yaml"] {
        let text = std::fs::read_to_string(root.join(file)).expect("read the file");
        let queried: std::collections::BTreeSet<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| word.starts_with("kvop_"))
            .map(str::to_string)
            .collect();
        assert!(!queried.is_empty(), "{file} queries no kvop metric");
        for metric in &queried {
            assert!(
                exported.contains(metric.as_str()),
                "{file} queries {metric}, which the operator does not export:\n{scraped}"
            );
        }
    }
    assert!(
        scraped.contains("kvop_objects{kind=\"KeyValueEntry\",health=\"ready\"} 1"),
        "{scraped}"
    );
}

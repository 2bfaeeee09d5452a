//! Bounded cross-node load in the suite: 50 clients in 25 rooms over three `ferry-signal`
//! processes sharing a redis-server, host and guest always on different nodes, relaying for
//! about 3 s with no error. The full run (10,000 clients, 60 s) is `examples/signal_load.rs`.

mod common;

#[path = "common/load.rs"]
mod load;

use std::time::Duration;

use common::nodes::Node;
use common::redis::start_or_skip;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_clients_relay_across_three_nodes() {
    let Some(redis) = start_or_skip("fifty_clients_relay_across_three_nodes") else {
        return;
    };
    let n: Vec<Node> = (0..3).map(|_| Node::start(&redis, &[])).collect();
    let urls: Vec<String> = n.iter().map(Node::ws).collect();
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        load::run_across(&urls, 25, 15, Duration::from_millis(200)),
    )
    .await
    .expect("load run within 30 s");
    eprintln!("{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.relayed, 25 * 2 * 15);
}

//! Bounded load test in the suite: 200 clients in 100 rooms relaying at once, no errors.
//! The heavier run (1,000 clients, server in its own process) is `examples/loadtest.rs`.

mod common;

#[path = "common/load.rs"]
mod load;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_rooms_relay_without_errors() {
    let srv = common::start(common::config()).await;
    let r = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        load::run(&srv.ws_url(), 100, 10),
    )
    .await
    .expect("load run within 30 s");
    eprintln!("{r:?}");
    assert_eq!(r.errors, 0, "{r:?}");
    assert_eq!(r.relayed, 100 * 2 * 10);
    // Clients have closed their sockets, but the server sees each close on its own
    // task; give it a bounded moment to finish before counting who is left.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    let (rooms, peers) = loop {
        let c = srv.state().counts();
        if c.1 == 0 || tokio::time::Instant::now() >= deadline {
            break c;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(
        (rooms, peers),
        (100, 0),
        "rooms stay until expiry; peers left"
    );
    assert!(srv.state().metrics().relayed_total() >= 2000);
    srv.shutdown().await;
}

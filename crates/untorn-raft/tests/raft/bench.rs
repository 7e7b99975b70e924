//! Throughput of the raft-kv service: acknowledged writes per second through a 3-node
//! cluster against a 1-node cluster, same binary, same clients. It measures and prints;
//! it asserts nothing about speed.
//!
//! `cargo test --release -p untorn-raft --test raft throughput -- --ignored --nocapture`
//! (`UNTORN_RAFT_BENCH_CLIENTS`, `UNTORN_RAFT_BENCH_SECS` change the load).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use untorn_raft::kv::{Client, Reply, Request, Rpc};

use crate::harness::{Cluster, NodeOpts};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(nodes: u64, clients: u64, secs: u64) -> f64 {
    let c = Cluster::start(nodes, &NodeOpts::default());
    let leader = c.leader(Duration::from_secs(30));
    let addr = c.node(leader).addr.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..clients)
        .map(|t| {
            let (addr, stop, acked) = (addr.clone(), stop.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut client = Client::connect(&addr, Duration::from_secs(10)).expect("connect");
                let value = "v".repeat(100);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let rpc = Rpc::Write(Request::Set {
                        key: format!("c{t}-{i}"),
                        value: value.clone(),
                    });
                    match client.call(&rpc).expect("write") {
                        Reply::Write(Ok(_)) => {
                            acked.fetch_add(1, Ordering::Relaxed);
                        }
                        other => panic!("write refused: {other:?}"),
                    }
                }
            })
        })
        .collect();
    // Warm up, then count over the measured window only.
    std::thread::sleep(Duration::from_secs(1));
    let start_count = acked.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let n = acked.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("client");
    }
    n as f64 / elapsed
}

#[test]
#[ignore = "a measurement, not a test: run with --release -- --ignored --nocapture"]
fn throughput() {
    let clients = env_u64("UNTORN_RAFT_BENCH_CLIENTS", 32);
    let secs = env_u64("UNTORN_RAFT_BENCH_SECS", 10);
    for clients in [1, clients] {
        let one = run(1, clients, secs);
        let three = run(3, clients, secs);
        eprintln!(
            "throughput, {clients} client(s), {secs} s, 100-byte values: \
             1 node {one:.0} writes/s, 3 nodes {three:.0} writes/s"
        );
    }
}

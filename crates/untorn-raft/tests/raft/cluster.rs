//! The 3-node raft-kv service: writes through the leader, SIGKILL of the leader, a new
//! election, every acknowledged write readable on the survivors, the dead node catching
//! up after a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::harness::{wait_for, Cluster, NodeOpts};

const T: Duration = Duration::from_secs(60);

fn check_has_all(who: &str, got: &BTreeMap<String, String>, acked: &BTreeMap<String, String>) {
    for (k, v) in acked {
        assert_eq!(got.get(k), Some(v), "{who} lost acknowledged write {k}");
    }
}

#[test]
fn three_nodes_survive_a_leader_sigkill_and_the_dead_node_catches_up() {
    let mut c = Cluster::start(3, &NodeOpts::default());
    let old_leader = c.leader(T);
    let old_term = c.node(old_leader).status().expect("status").term;

    let mut acked = BTreeMap::new();
    for i in 0..100 {
        let (k, v) = (format!("k{i:04}"), format!("v{i}"));
        assert!(
            c.write_via(old_leader, &k, &v).expect("write"),
            "leader refused a write"
        );
        acked.insert(k, v);
    }

    c.node_mut(old_leader).kill9();
    let new_leader = c.leader(T);
    assert_ne!(new_leader, old_leader);
    let new_term = c.node(new_leader).status().expect("status").term;
    assert!(new_term > old_term, "a new election happened");

    // A linearizable read through the new leader, and each survivor's own copy.
    let (_, got) = c.node(new_leader).dump(true).expect("linearizable dump");
    check_has_all("the new leader", &got, &acked);
    let survivors: Vec<u64> = c
        .nodes
        .iter()
        .filter(|n| n.is_running())
        .map(|n| n.id)
        .collect();
    assert_eq!(survivors.len(), 2);
    for id in &survivors {
        let got = wait_for("a survivor to apply every acknowledged write", T, || {
            let (_, got) = c.node(*id).dump(false).ok()?;
            acked.keys().all(|k| got.contains_key(k)).then_some(got)
        });
        check_has_all(&format!("survivor {id}"), &got, &acked);
    }

    // Progress without the dead node, then it comes back and catches up.
    for i in 100..150 {
        let (k, v) = (format!("k{i:04}"), format!("v{i}"));
        assert!(c.write_via(new_leader, &k, &v).expect("write"));
        acked.insert(k, v);
    }
    c.node_mut(old_leader).restart();
    let st = c.converged(T);
    assert!(st.last_applied.is_some());
    let (_, leader_view) = c.node(new_leader).dump(true).expect("dump");
    let (_, back) = c.node(old_leader).dump(false).expect("dump");
    check_has_all("the restarted node", &back, &acked);
    assert_eq!(
        back, leader_view,
        "the restarted node holds the leader's state"
    );
    c.logs_agree();
}

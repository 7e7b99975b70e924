//! The adapter's own guarantees, beyond openraft's suite: group commit and "acknowledged
//! only when durable" for the log; streamed, atomic snapshot install for the state
//! machine.

use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId, RaftLogReader};
use untorn_raft::kv::{self, Audit, KvApp, KvConfig, Request};
use untorn_raft::{LogStore, StateMachineStore};

use crate::harness::wait_for;

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(1, 0), index)
}

fn set(index: u64, key: &str, value: &str) -> Entry<KvConfig> {
    Entry {
        log_id: log_id(index),
        payload: EntryPayload::Normal(Request::Set {
            key: key.into(),
            value: value.into(),
        }),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn appends_are_readable_at_once_acknowledged_only_when_durable_and_group_committed() {
    const N: u64 = 50;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.untorn");
    let rt = runtime();
    let log: LogStore<KvConfig> = LogStore::open(&path).expect("open");

    // Hold untorn's writer lock: the log's commit cannot happen until it is released.
    let held = log.database().begin_write().expect("writer lock");
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let mut l = log.clone();
            rt.spawn(async move { l.blocking_append([set(i, &format!("k{i}"), "v")]).await })
        })
        .collect();
    // Every append returned (its entries are readable) although nothing is durable yet.
    let mut reader = log.clone();
    wait_for(
        "all appended entries to be readable",
        Duration::from_secs(30),
        || {
            let n = rt
                .block_on(reader.try_get_log_entries(0..N))
                .expect("read")
                .len();
            (n as u64 == N).then_some(())
        },
    );
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "an append was acknowledged before its commit"
    );
    assert_eq!(log.commit_count(), 0);
    drop(held);
    for t in tasks {
        rt.block_on(t).expect("join").expect("append");
    }
    // The writer took its first op before the lock was released, and everything queued
    // behind it in one more commit: N appends, at most two fsyncs.
    let commits = log.commit_count();
    assert!(
        (1..=2).contains(&commits),
        "{N} appends took {commits} commits"
    );

    // Durable: a reopened log holds every entry (the last clone closes the database).
    drop(reader);
    drop(log);
    let mut log: LogStore<KvConfig> = LogStore::open(&path).expect("reopen");
    let entries = rt.block_on(log.try_get_log_entries(0..N)).expect("read");
    assert_eq!(entries.len() as u64, N);
    let state = rt.block_on(log.get_log_state()).expect("state");
    assert_eq!(state.last_log_id.map(|l| l.index), Some(N - 1));
}

#[test]
fn truncate_and_purge_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("log.untorn");
    let rt = runtime();
    {
        let mut log: LogStore<KvConfig> = LogStore::open(&path).expect("open");
        rt.block_on(async {
            log.blocking_append((0..20).map(|i| set(i, "k", "v")))
                .await
                .expect("append");
            log.truncate(log_id(15)).await.expect("truncate");
            log.purge(log_id(4)).await.expect("purge");
        });
    }
    let mut log: LogStore<KvConfig> = LogStore::open(&path).expect("reopen");
    let (state, entries) = rt.block_on(async {
        (
            log.get_log_state().await.expect("state"),
            log.try_get_log_entries(0..100).await.expect("read"),
        )
    });
    assert_eq!(state.last_purged_log_id, Some(log_id(4)));
    assert_eq!(state.last_log_id, Some(log_id(14)));
    let idx: Vec<u64> = entries.iter().map(|e| e.log_id.index).collect();
    assert_eq!(idx, (5..15).collect::<Vec<_>>());
}

type Sm = StateMachineStore<KvConfig, KvApp>;

fn open_sm(dir: &std::path::Path) -> Sm {
    StateMachineStore::open(dir.join("sm.untorn"), dir.join("snapshots"), KvApp)
        .expect("open state machine")
        .with_install_chunk_bytes(4 << 10)
}

fn contents(sm: &Sm) -> (Option<u64>, Vec<(String, String)>, Audit) {
    let (applied, (pairs, audit)) = sm
        .reader()
        .read(|d| Ok((kv::dump(d)?, Audit::read(d)?)))
        .expect("read");
    (applied, pairs, audit)
}

#[test]
fn snapshot_streams_across_many_install_commits_and_a_damaged_one_changes_nothing() {
    let rt = runtime();
    let (a_dir, b_dir) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    let mut a = open_sm(a_dir.path());
    let mut b = open_sm(b_dir.path());
    // 600 entries with 300-byte values: ~200 KiB, about 45 install commits of 4 KiB.
    let big = "x".repeat(300);
    rt.block_on(a.apply((0..600).map(|i| set(i, &format!("k{i:04}"), &big))))
        .expect("apply");
    rt.block_on(b.apply((0..10).map(|i| set(i, &format!("old{i}"), "o"))))
        .expect("apply");
    let before_b = contents(&b);
    let txid_before = b.database().info().expect("info").txid;

    let snap = rt
        .block_on(async { a.get_snapshot_builder().await.build_snapshot().await })
        .expect("build");
    assert_eq!(snap.meta.last_log_id, Some(log_id(599)));

    // A damaged copy (one flipped byte in the middle) is refused; b is unchanged.
    let snap_file = std::fs::read_dir(a_dir.path().join("snapshots"))
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("snap-"))
        })
        .expect("snapshot file");
    let mut bytes = std::fs::read(&snap_file).expect("read snapshot");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    let damaged = b_dir.path().join("damaged");
    std::fs::write(&damaged, &bytes).expect("write");
    let f = tokio::fs::File::from_std(std::fs::File::open(&damaged).expect("open"));
    let err = rt.block_on(b.install_snapshot(&snap.meta, Box::new(f)));
    assert!(err.is_err(), "a damaged snapshot was installed");
    assert_eq!(
        contents(&b),
        before_b,
        "a failed install changed the state machine"
    );
    assert!(
        b.database().info().expect("info").txid > txid_before + 10,
        "the install loaded its records in many commits before failing"
    );
    assert!(rt
        .block_on(b.get_current_snapshot())
        .expect("current")
        .is_none());
    // The staging bucket of the failed install is gone after a reopen.
    drop(b);
    let mut b = open_sm(b_dir.path());
    let buckets = b
        .database()
        .begin_read()
        .expect("read")
        .buckets()
        .expect("buckets");
    assert_eq!(
        buckets.len(),
        2,
        "only the meta and the live data bucket: {buckets:?}"
    );
    assert_eq!(contents(&b), before_b);

    // The intact snapshot installs; b now equals a, audit included.
    let mut rx = rt.block_on(b.begin_receiving_snapshot()).expect("receive");
    let mut tx = snap.snapshot;
    rt.block_on(async {
        use tokio::io::{AsyncSeekExt, AsyncWriteExt};
        tx.seek(std::io::SeekFrom::Start(0)).await.expect("seek");
        tokio::io::copy(&mut tx, &mut *rx).await.expect("copy");
        rx.flush().await.expect("flush");
    });
    rt.block_on(b.install_snapshot(&snap.meta, rx))
        .expect("install");
    assert_eq!(contents(&b), contents(&a));
    assert_eq!(contents(&b).2.count, 600);
    let cur = rt
        .block_on(b.get_current_snapshot())
        .expect("current")
        .expect("some");
    assert_eq!(cur.meta, snap.meta);
    // And it is durable: a reopened b still holds it, and applies on from it.
    drop(b);
    let mut b = open_sm(b_dir.path());
    assert_eq!(contents(&b), contents(&a));
    rt.block_on(b.apply([set(600, "after", "1")]))
        .expect("apply after install");
    assert_eq!(contents(&b).0, Some(600));
    let twice = rt.block_on(b.apply([set(600, "again", "1")]));
    assert!(twice.is_err(), "an entry was applied twice");
}

//! openraft's own storage test suite (`openraft::testing::Suite`) on untorn.

use openraft::testing::{StoreBuilder, Suite};
use openraft::StorageError;
use untorn_raft::kv::{KvApp, KvConfig};
use untorn_raft::{LogStore, StateMachineStore};

struct Builder;

impl
    StoreBuilder<
        KvConfig,
        LogStore<KvConfig>,
        StateMachineStore<KvConfig, KvApp>,
        tempfile::TempDir,
    > for Builder
{
    async fn build(
        &self,
    ) -> Result<
        (
            tempfile::TempDir,
            LogStore<KvConfig>,
            StateMachineStore<KvConfig, KvApp>,
        ),
        StorageError<u64>,
    > {
        let dir = tempfile::tempdir().expect("tempdir");
        let (log, sm) = untorn_raft::open(dir.path(), KvApp).expect("open store");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's storage suite failed: {e}");
    }
}

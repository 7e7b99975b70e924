use std::sync::Arc;
use untorn::{Builder, Database, MemoryStorage, Storage};

/// A database on in-memory storage; keep the storages to reopen ("crash") later.
pub struct MemDb {
    pub data: MemoryStorage,
    pub journal: MemoryStorage,
}

impl MemDb {
    pub fn new() -> Self {
        MemDb {
            data: MemoryStorage::new(),
            journal: MemoryStorage::new(),
        }
    }
    pub fn open(&self, b: Builder) -> untorn::Result<Database> {
        b.open_storage(
            Arc::new(self.data.clone()) as Arc<dyn Storage>,
            Arc::new(self.journal.clone()) as Arc<dyn Storage>,
            true,
        )
    }
    pub fn open_default(&self) -> Database {
        self.open(Database::builder()).expect("open")
    }
}

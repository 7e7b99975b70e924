// The crate-docs example as a program: `cargo run -p untorn --example quickstart [PATH]`.
// `cargo test -p untorn` runs it too (tests/engine/examples.rs includes this file).

use std::path::Path;

use untorn::typed::Table;
use untorn::{Database, Error};

/// A typed bucket: string keys, big-endian u64 values.
const VISITS: Table<str, u64> = Table::new("visits");

/// Writes a small database at `path` and reads it back; returns what it printed.
fn run(path: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let mut lines = Vec::new();
    let db = Database::create(path)?;
    db.update(|tx| -> untorn::Result<()> {
        let users = tx.create_bucket_if_not_exists("users")?;
        users.put("alice", "admin")?;
        users.put("bob", "reader")?;
        let logins = users.create_bucket_if_not_exists("logins")?;
        logins.put(logins.next_sequence()?.to_be_bytes(), "2026-11-21")?;
        let visits = VISITS.create(tx)?;
        let n = visits.get("alice")?.unwrap_or(0);
        visits.put("alice", &(n + 1))?;
        Ok(())
    })?;
    db.view(|tx| -> untorn::Result<()> {
        let users = tx
            .bucket("users")?
            .ok_or_else(|| Error::bucket_not_found("users"))?;
        lines.push(format!("users: {} keys", users.len()?));
        for pair in users.iter()? {
            let (k, v) = pair?;
            lines.push(format!(
                "  {} = {}",
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(&v)
            ));
        }
        for sub in users.iter_buckets()? {
            let (name, bucket) = sub?;
            lines.push(format!(
                "  {}/: {} keys",
                String::from_utf8_lossy(&name),
                bucket.len()?
            ));
        }
        let visits = VISITS
            .open(tx)?
            .ok_or_else(|| Error::bucket_not_found("visits"))?;
        lines.push(format!(
            "alice visited {} time(s)",
            visits.get("alice")?.unwrap_or(0)
        ));
        Ok(())
    })?;
    Ok(lines)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quickstart.untorn".to_string());
    for line in run(Path::new(&path))? {
        println!("{line}");
    }
    Ok(())
}

//! The crate-docs example as a program: `cargo run -p untorn --example quickstart [PATH]`.

fn main() -> untorn::Result<()> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quickstart.untorn".to_string());
    let db = untorn::Database::create(&path)?;
    db.update(|tx| {
        let users = tx.create_bucket_if_not_exists("users")?;
        users.put("alice", "admin")?;
        users.put("bob", "reader")?;
        let logins = users.create_bucket_if_not_exists("logins")?;
        logins.put(logins.next_sequence()?.to_be_bytes(), "2026-11-21")?;
        Ok(())
    })?;
    db.view(|tx| {
        let users = tx.bucket("users")?.ok_or(untorn::Error::BucketNotFound)?;
        let subs: Vec<String> = users
            .buckets()?
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        println!("users: {} keys, sub-buckets {subs:?}", users.len()?);
        for item in users.iter()? {
            let (k, v) = item?;
            println!(
                "  {} = {}",
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(&v)
            );
        }
        Ok(())
    })?;
    let info = db.info()?;
    println!(
        "{path}: page size {}, txid {}, {} pages",
        info.page_size, info.txid, info.high_water
    );
    Ok(())
}

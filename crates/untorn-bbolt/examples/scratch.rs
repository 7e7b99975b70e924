fn main() {
    let args: Vec<String> = std::env::args().collect();
    let p = args.get(1).cloned().unwrap_or_default();
    let f = untorn_bbolt::BoltFile::open(&p).expect("open");
    if args.get(2).map(|s| s.as_str()) == Some("check") {
        let t = std::time::Instant::now();
        let r = untorn_bbolt::check_file(&f, untorn_bbolt::CheckOptions::default());
        for x in r.findings.iter().take(20) {
            println!("{x}");
        }
        println!(
            "{} findings, truncated {}, {:?}",
            r.findings.len(),
            r.truncated,
            t.elapsed()
        );
        return;
    }
    let id: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
    print!("{}", untorn_bbolt::info(&f));
    let id = if id == 0 { f.meta().root } else { id };
    print!("{}", untorn_bbolt::page(&f, id).expect("page"));
}

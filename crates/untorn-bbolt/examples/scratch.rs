fn main() {
    let p = std::env::args().nth(1).unwrap_or_default();
    let id: u64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let f = untorn_bbolt::BoltFile::open(&p).expect("open");
    print!("{}", untorn_bbolt::info(&f));
    let id = if id == 0 { f.meta().root } else { id };
    print!("{}", untorn_bbolt::page(&f, id).expect("page"));
}

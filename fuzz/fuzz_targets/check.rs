//! Native checker on arbitrary bytes and on mutated valid files: `check`, `page_infos`,
//! `stats` and a `--from-page` check must terminate without panicking.
//!
//! Seed the corpus with real databases (e.g. files made by `untorn load`) so libFuzzer's
//! mutations start from valid images. The same entry point runs over a few thousand
//! deterministic mutations on stable Rust in
//! `check::tests::mutated_images_never_panic` (crates/untorn/src/check/tests.rs).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    untorn::unstable::check::fuzz_entry(data);
});

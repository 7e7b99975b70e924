//! What a user meets first: errors on stderr with exit 2 and said once, `load` that
//! names the line and leaves nothing behind, truncation called truncation, counts that
//! agree with their nouns, salvage verdicts in the user's words, and the generated
//! pieces (completions, man page, bench, page-item, a PNG map).

use serde_json::Value;

use crate::common::{flip, ok, pages_of, sample, untorn, PS};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A database with one bucket holding one key.
fn tiny(dir: &std::path::Path) -> String {
    let p = dir.join("tiny.untorn");
    let p = p.to_str().unwrap().to_owned();
    ok(&["put", &p, "only", "k", "v"], 0);
    p
}

#[test]
fn load_of_bad_input_names_the_line_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("new.untorn");
    let ps = p.to_str().unwrap();
    let o = untorn(
        &["load", ps],
        Some(b"{\"bucket\":[\"a\"],\"key\":\"k\",\"value\":\"v\"}\n\n{\"bucket\": [\"a\"], \"key\": 7}\n"),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(e.contains("line 3"), "{e}");
    assert!(e.contains("was not created"), "{e}");
    assert!(
        !p.exists() && !untorn::journal_path(&p).exists(),
        "files left behind"
    );
    // A first line that is not JSON: said in words, with the column.
    let o = untorn(&["load", ps], Some(b"{oops\n"));
    let e = stderr(&o);
    assert!(e.contains("line 1: not valid JSON at column 2"), "{e}");
    assert!(!p.exists());
    // Past a commit, what was committed stays and the message says how much.
    let mut lines = String::new();
    for i in 0..5 {
        lines.push_str(&format!(
            "{{\"bucket\":[\"a\"],\"key\":\"k{i}\",\"value\":\"v\"}}\n"
        ));
    }
    lines.push_str("nonsense\n");
    let o = untorn(&["load", ps, "--batch", "2"], Some(lines.as_bytes()));
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("the first 4 lines (2 transactions) are committed"),
        "{e}"
    );
    assert!(e.contains("line 6"), "{e}");
    assert_eq!(ok(&["keys", ps, "a"], 0).lines().count(), 4);
}

#[test]
fn a_page_that_cannot_be_read_is_an_error_on_stderr_with_exit_2() {
    let db = sample();
    let o = untorn(&["page", db.p(), "999999"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let e = stderr(&o);
    assert!(e.contains("page 999999: cannot read"), "{e}");
    assert!(e.contains("past the end of the file"), "{e}");
    // A readable page next to it still prints.
    let o = untorn(&["page", db.p(), "0", "999999"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stdout).contains("page 0"));
}

#[test]
fn a_truncated_file_is_reported_as_truncated() {
    let db = sample();
    let leaves = pages_of(&db, "leaf");
    let last = *leaves.iter().max().unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&db.path)
        .unwrap();
    f.set_len(last * PS as u64).unwrap();
    drop(f);
    let o = untorn(&["check", db.p(), "--json"], None);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let messages: Vec<&str> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("truncated") && m.contains(&format!("page {last}"))),
        "{messages:?}"
    );
    assert!(
        !messages.iter().any(|m| m.contains("fill whole buffer")),
        "{messages:?}"
    );
}

#[test]
fn an_io_error_is_said_once() {
    let dir = tempfile::tempdir().unwrap();
    let o = untorn(&["info", dir.path().to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert_eq!(e.matches("os error 21").count(), 1, "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

#[test]
fn counts_agree_with_their_nouns_and_info_and_stats_name_their_bucket_counts() {
    let dir = tempfile::tempdir().unwrap();
    let p = tiny(dir.path());
    let check = ok(&["check", &p], 0);
    assert!(check.contains(", 1 key, 1 bucket checked"), "{check}");
    let info = ok(&["info", &p], 0);
    assert!(info.contains("top-level buckets  1"), "{info}");
    assert!(
        info.contains("1 commit replayed") || info.contains("0 commits replayed"),
        "{info}"
    );
    let stats = ok(&["stats", &p], 0);
    assert!(stats.contains("buckets (all levels)  1"), "{stats}");
    assert!(!format!("{check}{info}{stats}").contains("(s)"));
    // Usage lines name their arguments.
    let help = ok(&["get", "--help"], 0);
    assert!(
        help.contains("Usage: untorn get [OPTIONS] <FILE> <BUCKET>... <KEY>"),
        "{help}"
    );
    assert!(!help.contains("<ARG>"), "{help}");
}

#[test]
fn salvage_says_what_was_lost_in_words() {
    let db = sample();
    let leaves = pages_of(&db, "leaf");
    flip(&db.path, leaves[leaves.len() / 2], 300);
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("s.untorn");
    let o = untorn(&["salvage", db.p(), dst.to_str().unwrap()], None);
    let out = String::from_utf8_lossy(&o.stdout);
    if o.status.code() == Some(1) {
        assert!(out.contains("DATA LOST: 1 range unreadable"), "{out}");
        assert!(out.contains("keys ["), "{out}");
    }
    assert!(!out.contains('`'), "field names in the text: {out}");
    assert!(!out.contains("(ies)") && !out.contains("(s)"), "{out}");
}

#[test]
fn completions_man_page_bench_and_page_item() {
    let bash = ok(&["completions", "bash"], 0);
    assert!(
        bash.contains("_untorn") && bash.contains("page-item"),
        "{bash}"
    );
    let zsh = ok(&["completions", "zsh"], 0);
    assert!(zsh.contains("#compdef untorn"));
    let man = ok(&["man"], 0);
    assert!(
        man.starts_with(".ie") || man.starts_with(".TH"),
        "{}",
        &man[..80]
    );
    assert!(man.contains("salvage"));
    let dir = tempfile::tempdir().unwrap();
    ok(&["man", "--out-dir", dir.path().to_str().unwrap()], 0);
    assert!(dir.path().join("untorn-check.1").exists());

    let b: Value = serde_json::from_str(&ok(
        &[
            "bench",
            "--count",
            "300",
            "--batch-size",
            "100",
            "--read-mode",
            "rnd",
            "--json",
        ],
        0,
    ))
    .unwrap();
    assert_eq!(b["commits"], 3);
    assert!(b["writes_per_second"].as_f64().unwrap() > 0.0);
    assert!(b["reads_per_second"].as_f64().unwrap() > 0.0);

    let p = tiny(dir.path());
    let leaf = {
        let pages: Value = serde_json::from_str(&ok(&["pages", &p, "--json"], 0)).unwrap();
        pages
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["type"] == "leaf" && x["items"] == 1 && x["state"] == "reachable")
            .map(|x| x["id"].to_string())
            .unwrap()
    };
    let _ = leaf;
    // The bucket's leaf holds k = v (the root's leaf holds the bucket).
    let pages: Value = serde_json::from_str(&ok(&["pages", &p, "--json"], 0)).unwrap();
    let mut found = false;
    for x in pages.as_array().unwrap() {
        if x["type"] != "leaf" {
            continue;
        }
        let id = x["id"].to_string();
        let item = ok(&["page-item", &p, &id, "0"], 0);
        if item.contains("key    k\n") {
            assert!(item.contains("value  v"), "{item}");
            assert_eq!(ok(&["page-item", &p, &id, "0", "--value-only"], 0), "v");
            found = true;
        } else {
            assert!(item.contains("a bucket (root page"), "{item}");
        }
    }
    assert!(found);
    let o = untorn(&["page-item", &p, "0", "5"], None);
    assert_eq!(o.status.code(), Some(2));
}

/// Pixels of `color` in a PNG.
fn count_pixels(png_bytes: &[u8], color: [u8; 3]) -> (u32, u32, usize) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Rgb);
    let n = buf[..frame.buffer_size()]
        .chunks(3)
        .filter(|p| *p == color)
        .count();
    (frame.width, frame.height, n)
}

#[test]
fn the_png_map_shows_the_damage() {
    let db = sample();
    let dir = tempfile::tempdir().unwrap();
    let png_path = dir.path().join("m.png");
    let pp = png_path.to_str().unwrap();
    let corrupt = [0xe3, 0x1a, 0x1c];
    let j: Value = serde_json::from_str(&ok(&["map", db.p(), "--png", pp, "--json"], 0)).unwrap();
    let (w, h, red) = count_pixels(&std::fs::read(&png_path).unwrap(), corrupt);
    assert_eq!(
        (u64::from(w), u64::from(h)),
        (j["width"].as_u64().unwrap(), j["height"].as_u64().unwrap())
    );
    let legend_swatch = 100; // the legend's 10×10 "corrupt" swatch
    assert_eq!(red, legend_swatch, "a clean file has no corrupt cell");
    let leaves = pages_of(&db, "leaf");
    flip(&db.path, leaves[1], 300);
    ok(&["map", db.p(), "--png", pp], 0);
    let (_, _, red) = count_pixels(&std::fs::read(&png_path).unwrap(), corrupt);
    assert!(
        red > legend_swatch,
        "the damaged leaf is drawn in the corrupt colour"
    );
    // A zoom that leaves the page out draws no corrupt cell.
    let range = format!("{}..{}", leaves[1] + 1, leaves[1] + 9);
    ok(&["map", db.p(), "--png", pp, "--pages", &range], 0);
    let (_, _, red) = count_pixels(&std::fs::read(&png_path).unwrap(), corrupt);
    assert_eq!(red, legend_swatch);
}

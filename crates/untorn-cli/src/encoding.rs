//! How bytes appear in output and in the dump format.
//!
//! Dump lines encode every name, key and value as either a JSON string (the bytes are
//! valid UTF-8; `--format text` only) or an object `{"hex": "<lowercase hex>"}`. `load`
//! accepts both forms anywhere. Human output shows text when it is printable UTF-8 and
//! `0x<hex>` otherwise.

use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};

/// Lowercase hex of `b`.
pub fn to_hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(b"0123456789abcdef"[usize::from(x >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(x & 0xf)]));
    }
    s
}

/// Bytes from hex (upper or lower case, even length).
pub fn from_hex(s: &str) -> Result<Vec<u8>> {
    let s = s.strip_prefix("0x").unwrap_or(s);
    if !s.len().is_multiple_of(2) {
        bail!("hex string {s:?} has an odd length");
    }
    let digit = |c: u8| -> Result<u8> {
        match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(anyhow!("{:?} is not a hex digit", char::from(c))),
        }
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [h, l] => Ok(digit(*h)? << 4 | digit(*l)?),
            _ => Err(anyhow!("odd hex")),
        })
        .collect()
}

/// The dump encoding of `b`: a string when `text` and the bytes are UTF-8, else hex.
pub fn encode(b: &[u8], text: bool) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) if text => Value::String(s.to_owned()),
        _ => json!({ "hex": to_hex(b) }),
    }
}

/// Inverse of [`encode`].
pub fn decode(v: &Value) -> Result<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Object(m) => match (m.get("hex"), m.len()) {
            (Some(Value::String(h)), 1) => from_hex(h),
            _ => bail!("expected a string or {{\"hex\": \"..\"}}, found {v}"),
        },
        _ => bail!("expected a string or {{\"hex\": \"..\"}}, found {v}"),
    }
}

/// Bytes in the CLI's notation: the text if printable UTF-8 not starting with `0x`,
/// else `0x<hex>` (so that [`arg_bytes`] reads back exactly these bytes).
pub fn display(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) if !s.is_empty() && !s.starts_with("0x") && s.chars().all(|c| !c.is_control()) => {
            s.to_owned()
        }
        _ => format!("0x{}", to_hex(b)),
    }
}

/// Bytes always in hex (`--hex` output): `0x<hex>`, which [`arg_bytes`] also reads.
pub fn display_hex(b: &[u8]) -> String {
    format!("0x{}", to_hex(b))
}

/// A command-line name or key in the CLI's notation: `0x<hex>` is those bytes, anything
/// else its UTF-8 bytes. (A text key that starts with `0x` is given in hex, as
/// [`display`] prints it.)
pub fn arg_bytes(s: &str) -> Result<Vec<u8>> {
    match s.strip_prefix("0x") {
        Some(h) => from_hex(h).map_err(|e| anyhow!("{s:?}: {e} (0x starts a hex key)")),
        None => Ok(s.as_bytes().to_vec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_dump_encoding_round_trip() {
        for b in [&b""[..], b"abc", &[0xff, 0, 7], "é".as_bytes()] {
            assert_eq!(from_hex(&to_hex(b)).unwrap(), b);
            assert_eq!(decode(&encode(b, true)).unwrap(), b);
            assert_eq!(decode(&encode(b, false)).unwrap(), b);
        }
        assert_eq!(encode(b"hi", true), json!("hi"));
        assert_eq!(encode(&[0xff], true), json!({"hex": "ff"}));
        assert!(from_hex("abc").is_err());
        assert!(decode(&json!(5)).is_err());
        assert_eq!(display(b"x\n"), "0x780a");
        // One notation: whatever `display` prints, `arg_bytes` reads back.
        for b in [
            &b"alice"[..],
            b"0x12",
            &[0, 0, 0, 1],
            b"a b",
            b"x\n",
            "é".as_bytes(),
        ] {
            assert_eq!(arg_bytes(&display(b)).unwrap(), b, "{}", display(b));
            assert_eq!(arg_bytes(&display_hex(b)).unwrap(), b);
        }
        assert_eq!(display(b"0x12"), "0x30783132");
        assert!(arg_bytes("0xzz").is_err());
    }
}

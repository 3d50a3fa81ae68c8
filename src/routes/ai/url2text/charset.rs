//! Decoding a fetched page to text: byte-order mark, then the `Content-Type` charset, then a
//! `<meta>` declaration in the first 1024 bytes, then UTF-8 — the order browsers use.

use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

fn from_content_type(content_type: &str) -> Option<&'static Encoding> {
    content_type.split(';').skip(1).find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| Encoding::for_label(value.trim().trim_matches(['"', '\'']).as_bytes()))
            .flatten()
    })
}

/// `<meta charset="…">` or `<meta http-equiv="Content-Type" content="…; charset=…">`.
fn from_meta(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(1024)];
    let lower = head.to_ascii_lowercase();
    let mut i = 0;
    while let Some(pos) = lower[i..].windows(7).position(|w| w == b"charset") {
        let mut j = i + pos + 7;
        while j < lower.len() && matches!(lower[j], b' ' | b'\t') {
            j += 1;
        }
        if j < lower.len() && lower[j] == b'=' {
            j += 1;
            while j < lower.len() && matches!(lower[j], b' ' | b'"' | b'\'') {
                j += 1;
            }
            let start = j;
            while j < lower.len() && !matches!(lower[j], b'"' | b'\'' | b' ' | b';' | b'>' | b'/') {
                j += 1;
            }
            if let Some(encoding) = Encoding::for_label(&head[start..j]) {
                // A page cannot really be UTF-16 if its <meta> is readable as ASCII.
                return Some(if encoding.name() == "x-user-defined" {
                    WINDOWS_1252
                } else {
                    encoding.output_encoding()
                });
            }
        }
        i = j.max(i + pos + 7);
    }
    None
}

/// Decodes `bytes`; `sniff_meta` is for HTML only.
pub fn decode(bytes: &[u8], content_type: Option<&str>, sniff_meta: bool) -> String {
    let declared = content_type
        .and_then(from_content_type)
        .or_else(|| if sniff_meta { from_meta(bytes) } else { None })
        .unwrap_or(UTF_8);
    // `decode` lets a byte-order mark override the declaration; bad bytes become U+FFFD.
    let (text, _, _) = declared.decode(bytes);
    text.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_meta_and_bom_decide_in_that_order() {
        let latin1 = b"<html><head><meta charset=\"iso-8859-1\"></head><body>caf\xe9</body></html>";
        assert!(decode(latin1, Some("text/html"), true).contains("café"));
        let http_equiv = b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">\x93q\x94";
        assert!(decode(http_equiv, None, true).contains("\u{201c}q\u{201d}"));
        assert!(decode(b"caf\xe9", Some("text/plain; charset=ISO-8859-1"), false).contains("café"));
        let bom = b"\xef\xbb\xbfcaf\xc3\xa9";
        assert_eq!(
            decode(bom, Some("text/plain; charset=iso-8859-1"), false),
            "café"
        );
        assert_eq!(decode("café".as_bytes(), None, true), "café");
    }
}

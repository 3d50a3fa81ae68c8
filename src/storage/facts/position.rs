//! Position attributes: the attribute under which synopsys keeps each member of an imported
//! array, so that members keep their order and duplicates stay distinct facts
//! (docs/design/synopsys-ids.md §2.1). A position is a major letter, a minor of as many
//! digits as the major allows (`a`: 1, `b`: 2 …) and a bias taken from the member's reference;
//! each next member's minor is the previous one's plus one. Digits count in ASCII order
//! (`0-9`, `A-Z`, `a-z`); the bias is written in base 62 in another order (`0-9a-zA-Z`).

use super::reference::Reference;

const BASE62: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an array this long has no further position (past `z` with 26 digits)")]
pub struct PositionsExhausted;

/// The bias of a member: base 62 of the last four bytes of its digest, big-endian, one
/// leading `0` per leading zero byte (as the `base-x` package writes it).
fn bias(member: &Reference) -> String {
    let bytes = &member.digest()[28..];
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    let mut value = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let mut digits = Vec::new();
    while value > 0 {
        digits.push(BASE62[(value % 62) as usize]);
        value /= 62;
    }
    let mut text = "0".repeat(zeros);
    text.extend(digits.iter().rev().map(|d| char::from(*d)));
    text
}

/// The next digit in ASCII order over `0-9`, `A-Z`, `a-z`; none after `z`.
fn increment(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'8' | b'A'..=b'Y' | b'a'..=b'y' => Some(digit + 1),
        b'9' => Some(b'A'),
        b'Z' => Some(b'a'),
        _ => None,
    }
}

/// How many minor digits a major letter carries.
fn capacity(major: u8) -> usize {
    match major {
        b'a'..=b'z' => usize::from(major - b'a') + 1,
        b'A'..=b'Z' => usize::from(b'Z' - major) + 1,
        _ => 0,
    }
}

fn trim(text: &str) -> &str {
    text.trim_end_matches('0')
}

fn create(major: u8, minor: &str, patch: &str) -> String {
    let patch = trim(patch);
    let minor = if patch.is_empty() { trim(minor) } else { minor };
    format!("{}{minor}{patch}", char::from(major))
}

/// The position of the member `member` after the one at `after` (none: the first).
pub fn next(after: Option<&str>, member: &Reference) -> Result<String, PositionsExhausted> {
    let bias = bias(member);
    let Some(previous) = after else {
        return Ok(create(b'a', "", &bias));
    };
    let bytes = previous.as_bytes();
    let major = bytes.first().copied().unwrap_or(b'a');
    let cap = capacity(major);
    let mut minor: Vec<u8> = bytes.iter().skip(1).take(cap).copied().collect();
    minor.resize(cap, b'0');
    // An odometer from the right: the first digit that goes up keeps what is left of it.
    for i in (0..cap).rev() {
        if let Some(up) = increment(minor[i]) {
            minor[i] = up;
            minor.truncate(i + 1);
            return Ok(create(major, &String::from_utf8_lossy(&minor), &bias));
        }
        minor[i] = b'0';
    }
    let major = increment(major)
        .filter(|m| m.is_ascii_alphabetic())
        .ok_or(PositionsExhausted)?;
    Ok(create(major, &"0".repeat(capacity(major)), &bias))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chain(members: &[serde_json::Value]) -> Vec<String> {
        let mut at: Option<String> = None;
        members
            .iter()
            .map(|m| {
                let position =
                    next(at.as_deref(), &Reference::of(m).expect("reference")).expect("position");
                at = Some(position.clone());
                position
            })
            .collect()
    }

    /// synopsys 5.1.1's own positions (docs/design/synopsys-ids.md §2.2).
    #[test]
    fn positions_are_those_synopsys_gives() {
        assert_eq!(chain(&[json!(true), json!(null)]), ["a4yjg2Y", "a54C5qrZ"]);
        assert_eq!(
            chain(&[json!("a"), json!("b"), json!("c")]),
            ["a4DhnBU", "a544n6Zw", "a61gdKDw"]
        );
        assert_eq!(
            chain(&[json!(1), json!(1), json!(1)]),
            ["a2hffIG", "a32hffIG", "a42hffIG"]
        );
        let seventy: Vec<_> = (0..70).map(|n| json!(n)).collect();
        let positions = chain(&seventy);
        let expected = [
            (0, "a43ocnh"),
            (1, "a52hffIG"),
            (2, "a63cyNVr"),
            (58, "b002Rq1A3"),
            (59, "b012Vlxbg"),
        ];
        for (at, position) in expected {
            assert_eq!(positions[at], position, "member {at}");
        }
        assert_eq!(positions[67], "b09Z36SF");
        assert_eq!(positions[68], "b0A31QycY");
        assert_eq!(positions[69], "b0B4mA5SP");
        let mut sorted = positions.clone();
        sorted.sort();
        assert_eq!(sorted, positions, "positions sort in member order");
    }

    #[test]
    fn the_odometer_keeps_the_digit_that_went_up() {
        assert_eq!(increment(b'9'), Some(b'A'));
        assert_eq!(increment(b'Z'), Some(b'a'));
        assert_eq!(increment(b'z'), None);
        let member = Reference::of(&json!(0)).expect("reference");
        let bias = bias(&member);
        assert_eq!(next(Some("b0z1"), &member), Ok(format!("b1{bias}")));
        assert_eq!(next(Some("az"), &member), Ok(format!("b00{bias}")));
        let last = format!("z{}", "z".repeat(26));
        assert_eq!(next(Some(&last), &member), Err(PositionsExhausted));
    }
}

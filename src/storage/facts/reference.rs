//! Merkle references: the content-derived ids synopsys gives entities, queries and blobs,
//! computed as the npm package `merkle-reference` 1.1.0 computes them, so that clients that
//! compute ids locally agree with us (docs/design/synopsys-ids.md, §1).
//!
//! A value's digest is `SHA-256(SHA-256(tag) ‖ payload)`: the tag names the type, the payload
//! is its bytes (SLEB128 integers, little-endian doubles, UTF-8 strings) or, for a list or a
//! map, a pairwise fold of its members' digests. A reference hashes to itself.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// CID version 1, codec 0x07 (merkle reference), multihash sha2-256 of 32 bytes.
const PREFIX: [u8; 4] = [0x01, 0x07, 0x12, 0x20];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("{0:?} is not a merkle reference (a base32 `ba4jc…` or `baedrei…` id)")]
    NotAReference(String),
    #[error("a link {{\"/\": …}} holds a merkle reference or {{\"bytes\": base64}}, not {0}")]
    BadLink(String),
    #[error("a number that is not finite has no reference")]
    NotFinite,
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `digest(digest(tag) ‖ payload)`, as every typed node hashes.
fn tagged(tag: &Tag, payload: &[u8]) -> [u8; 32] {
    sha256(&[&tag.digest, payload])
}

/// Pairwise SHA-256 up to one node; an odd last node goes up unchanged.
fn fold(mut layer: Vec<[u8; 32]>) -> [u8; 32] {
    if layer.is_empty() {
        return sha256(&[]);
    }
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => sha256(&[left, right]),
                _ => pair[0],
            })
            .collect();
    }
    layer[0]
}

/// Signed LEB128 of the integer whose two's complement is `bytes` (little-endian, with
/// infinite sign extension beyond the last byte).
fn sleb128(bytes: &[u8], negative: bool) -> Vec<u8> {
    let sign = u8::from(negative);
    let bit = |i: usize| -> u8 { bytes.get(i / 8).map_or(sign, |byte| (byte >> (i % 8)) & 1) };
    let width = bytes.len() * 8;
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let group = (0..7).fold(0u8, |acc, k| acc | (bit(at + k) << k));
        at += 7;
        let rest_is_sign = (at..width).all(|i| bit(i) == sign);
        if rest_is_sign && (group & 0x40 != 0) == negative {
            out.push(group);
            return out;
        }
        out.push(group | 0x80);
    }
}

/// The two's complement bytes of `magnitude` (little-endian), negated when `negative`.
fn twos_complement(mut magnitude: Vec<u8>, negative: bool) -> Vec<u8> {
    magnitude.push(0);
    if negative {
        let mut carry = true;
        for byte in &mut magnitude {
            let (sum, overflow) = (!*byte).overflowing_add(u8::from(carry));
            *byte = sum;
            carry = overflow;
        }
    }
    magnitude
}

fn integer_payload(value: i128) -> Vec<u8> {
    let bytes = twos_complement(value.unsigned_abs().to_le_bytes().to_vec(), value < 0);
    sleb128(&bytes, value < 0)
}

/// The payload of a finite number: an integral one (`1.0`, `1e300` too, as JavaScript's
/// `Number.isInteger` says) as the exact integer, any other as a little-endian double.
fn number_payload(number: &serde_json::Number) -> Result<(&'static Tag, Vec<u8>), ReferenceError> {
    if let Some(i) = number.as_i64() {
        return Ok((&INTEGER, integer_payload(i.into())));
    }
    if let Some(u) = number.as_u64() {
        return Ok((&INTEGER, integer_payload(u.into())));
    }
    let float = number.as_f64().ok_or(ReferenceError::NotFinite)?;
    if !float.is_finite() {
        return Err(ReferenceError::NotFinite);
    }
    if float.fract() != 0.0 {
        return Ok((&FLOAT, float.to_le_bytes().to_vec()));
    }
    if float == 0.0 {
        // -0 too.
        return Ok((&INTEGER, integer_payload(0)));
    }
    // An integral double beyond 64 bits: mantissa × 2^exponent, exactly.
    let bits = float.to_bits();
    let exponent = i64::try_from((bits >> 52) & 0x7ff).unwrap_or(0) - 1075;
    let mantissa = (bits & ((1 << 52) - 1)) | (1 << 52);
    let mut magnitude = mantissa.to_le_bytes().to_vec();
    if exponent >= 0 {
        magnitude = shift_left(&magnitude, usize::try_from(exponent).unwrap_or(0));
    } else {
        let shifted = mantissa >> exponent.unsigned_abs().min(63);
        magnitude = shifted.to_le_bytes().to_vec();
    }
    let negative = float < 0.0;
    let bytes = twos_complement(magnitude, negative);
    Ok((&INTEGER, sleb128(&bytes, negative)))
}

fn shift_left(bytes: &[u8], by: usize) -> Vec<u8> {
    let mut out = vec![0u8; bytes.len() + by / 8 + 1];
    for (i, byte) in bytes.iter().enumerate() {
        let wide = u16::from(*byte) << (by % 8);
        out[i + by / 8] |= wide.to_le_bytes()[0];
        out[i + by / 8 + 1] |= wide.to_le_bytes()[1];
    }
    out
}

/// A node type's tag with its digest, written out here because every value hashes it:
/// hashing it each time was half of an import's hashing (a test checks each digest).
struct Tag {
    #[cfg(test)]
    name: &'static str,
    digest: [u8; 32],
}

impl Tag {
    const fn new(name: &'static str, hex: &str) -> Tag {
        let hex = hex.as_bytes();
        let mut digest = [0u8; 32];
        let mut i = 0;
        while i < 32 {
            digest[i] = nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]);
            i += 1;
        }
        #[cfg(not(test))]
        let _ = name;
        Tag {
            #[cfg(test)]
            name,
            digest,
        }
    }
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("a tag's digest is lowercase hex"),
    }
}

const NULL: Tag = Tag::new(
    "merkle-structure:null",
    "d918629e0a878b7a60d089f9361709b65c862b80117c8e17f580ad4b712e7b27",
);
const BOOLEAN: Tag = Tag::new(
    "merkle-structure:boolean/byte",
    "dd57cee12c6eafe31a9f6f75729b9934f90922d7c8dd24a073d1d3438f03df5d",
);
const INTEGER: Tag = Tag::new(
    "merkle-structure:integer/leb128",
    "dcee3d9ad8aacc5fba134213648279ec61aaac596d20c967cd61e1f92a7af6b1",
);
const FLOAT: Tag = Tag::new(
    "merkle-structure:float/double-precision",
    "e783385e0056c32987ef6174a5057a3cfd904f57a07ab7543c702aa4729890f5",
);
const STRING: Tag = Tag::new(
    "merkle-structure:string/utf-8",
    "7906c4dd132815dc81dd4a001b71a625bc146d95e63453f568d4c6044a899e98",
);
const BYTES: Tag = Tag::new(
    "merkle-structure:bytes/raw",
    "95a7149bc3012e9357740c5cc4961d54ceae504f3f876a2c2e9812bcf4a3b7a3",
);
const LIST: Tag = Tag::new(
    "merkle-structure:list/item/ref-tree",
    "170093cfabd73ab932696704e7271615a572d124fc9ee1555d636db936b319ea",
);
const MAP: Tag = Tag::new(
    "merkle-structure:map/k+v/ref-tree",
    "14e549179b64ecf56bc518684cc23782a0510a12724b7439fb5ab7b07b798f56",
);

impl Reference {
    /// The reference of a JSON value as synopsys reads JSON (DAG-JSON): an object whose one
    /// key is `"/"` is a link to a reference (`{"/": "baedrei…"}`), or bytes
    /// (`{"/": {"bytes": "<base64>"}}`).
    pub fn of(value: &Value) -> Result<Reference, ReferenceError> {
        Ok(Reference(digest(value)?))
    }

    /// The reference of raw bytes (a blob's id).
    pub fn of_bytes(bytes: &[u8]) -> Reference {
        Reference(tagged(&BYTES, bytes))
    }

    /// The reference whose digest this is (as the store keeps it).
    pub fn from_digest(digest: [u8; 32]) -> Reference {
        Reference(digest)
    }

    pub fn digest(&self) -> &[u8; 32] {
        &self.0
    }

    /// The form in URLs and `Location` headers: `ba4jc…` (57 characters).
    pub fn to_url_form(&self) -> String {
        let mut bytes = PREFIX[1..].to_vec();
        bytes.extend_from_slice(&self.0);
        format!("b{}", base32::encode(&bytes))
    }

    /// The form in JSON bodies, `{"/": "baedrei…"}`: a CIDv1 (59 characters).
    pub fn to_link(&self) -> String {
        let mut bytes = PREFIX.to_vec();
        bytes.extend_from_slice(&self.0);
        format!("b{}", base32::encode(&bytes))
    }

    /// `{"/": "baedrei…"}`.
    pub fn to_json(&self) -> Value {
        serde_json::json!({"/": self.to_link()})
    }

    /// Reads either text form.
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let wrong = || ReferenceError::NotAReference(text.chars().take(80).collect());
        let bytes = text
            .strip_prefix('b')
            .and_then(base32::decode)
            .ok_or_else(wrong)?;
        let digest = match bytes.as_slice() {
            [0x01, 0x07, 0x12, 0x20, rest @ ..] | [0x07, 0x12, 0x20, rest @ ..] => rest,
            _ => return Err(wrong()),
        };
        <[u8; 32]>::try_from(digest)
            .map(Reference)
            .map_err(|_| wrong())
    }
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_url_form())
    }
}

fn digest(value: &Value) -> Result<[u8; 32], ReferenceError> {
    Ok(match value {
        Value::Null => tagged(&NULL, &[]),
        Value::Bool(b) => tagged(&BOOLEAN, &[u8::from(*b)]),
        Value::Number(n) => {
            let (tag, payload) = number_payload(n)?;
            tagged(tag, &payload)
        }
        Value::String(s) => tagged(&STRING, s.as_bytes()),
        Value::Array(items) => tagged(
            &LIST,
            &fold(items.iter().map(digest).collect::<Result<_, _>>()?),
        ),
        Value::Object(map) => {
            if map.len() == 1
                && let Some(link) = map.get("/")
            {
                return link_digest(link);
            }
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            // By UTF-8 bytes, which is how Rust orders strings.
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let hashed = entries
                .into_iter()
                .map(|(key, value)| {
                    Ok(sha256(&[&tagged(&STRING, key.as_bytes()), &digest(value)?]))
                })
                .collect::<Result<Vec<_>, ReferenceError>>()?;
            tagged(&MAP, &fold(hashed))
        }
    })
}

/// `{"/": "baedrei…"}` is the reference itself; `{"/": {"bytes": …}}` bytes.
fn link_digest(link: &Value) -> Result<[u8; 32], ReferenceError> {
    match link {
        Value::String(text) => Reference::parse(text).map(|r| r.0),
        Value::Object(inner) if inner.len() == 1 => {
            let encoded = inner
                .get("bytes")
                .and_then(Value::as_str)
                .ok_or_else(|| ReferenceError::BadLink(link.to_string()))?;
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(encoded.trim_end_matches('='))
                .map_err(|_| ReferenceError::BadLink(link.to_string()))?;
            Ok(tagged(&BYTES, &bytes))
        }
        other => Err(ReferenceError::BadLink(other.to_string())),
    }
}

/// RFC 4648 base32, lower case, no padding: multibase's `b`.
mod base32 {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
        let (mut buffer, mut bits) = (0u32, 0u32);
        for byte in bytes {
            buffer = (buffer << 8) | u32::from(*byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
        }
        out
    }

    pub fn decode(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(text.len() * 5 / 8);
        let (mut buffer, mut bits) = (0u32, 0u32);
        for c in text.bytes() {
            let value = ALPHABET.iter().position(|a| *a == c)?;
            buffer = (buffer << 5) | u32::try_from(value).ok()?;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(bytes: &[u8]) -> String {
        crate::platform::hex::to_hex(bytes)
    }

    #[test]
    fn each_tag_digest_is_its_names() {
        for tag in [
            &NULL, &BOOLEAN, &INTEGER, &FLOAT, &STRING, &BYTES, &LIST, &MAP,
        ] {
            assert_eq!(tag.digest, sha256(&[tag.name.as_bytes()]), "{}", tag.name);
        }
    }

    /// merkle-reference 1.1.0's own answers (docs/design/synopsys-ids.md §1.6).
    #[test]
    fn references_are_those_merkle_reference_computes() {
        let cases = [
            (
                json!(null),
                "30addfff105e3b612a7798a446a1b85f29b942d98ae0c1aa86bc5a28fbf7dde7",
                "ba4jcamfn377raxr3mevhpgfei2q3qxzjxfbntcxaygvinpc2fd57pxph",
                "baedreibqvxp76ec6hnqsu54yurdkdoc7fg4ufwmk4da2vbv4liupx56544",
            ),
            (
                json!(true),
                "1f4d28ae96597546e4e61ed281e4ecb096fc38e3d884cfe21038b936f8a44b00",
                "ba4jcah2nfcxjmwlvi3somhwsqhsozmew7q4ohweez7rbaofzg34kisya",
                "baedreia7juuk5fszovdojzq62ka6j3fqs36dry6yqth6eebyxe3prjclaa",
            ),
            (
                json!(false),
                "5f8053aa629a10173d637c8e599d089ad151aaaebfafc8da00527b409f3bd984",
                "ba4jcax4akovgfgqqc46wg7eolgoqrgwrkgvk5p5pzdnaaut3icptxwme",
                "baedreic7qbj2uyu2calt2y34rzmz2ce22fi2vlv7v7enuacspnaj6o6zqq",
            ),
            (
                json!(0),
                "151331af292d77ec5ab6f74e6148a33a9abdb917e0c16900404a81bbdd68b8c3",
                "ba4jcafitggxssllx5rnln52omfekgou2xw4rpygbneaeasubxpowrogd",
                "baedreiavcmy26kjno7wfvnxxjzquriz2tk63sf7ayfuqaqckqg5522fyym",
            ),
            (
                json!(1),
                "5ccc2c80388b21401d3c0a863ca9cd94bc3e2ae64c7f2c0e6f151f5b7c669966",
                "ba4jcaxgmfsadrczbiaotycughsu43ff4hyvomtd7fqhg6fi7ln6gnglg",
                "baedreic4zqwiaoelefab2pakqy6kttmuxq7cvzsmp4wa43yvd5nxyzuzmy",
            ),
            (
                json!(-1),
                "b4d190b31bbc5ae525f77bc2aac0c929f38bff473c4e22870556b6fba15c31fb",
                "ba4jcbngrsczrxpc24us7o66cvlamskptrp7uopcoekdqkvvw7oqvymp3",
                "baedreifu2gilgg54llssl533ykvmbsjj6of76rz4jyriobkww352cxbr7m",
            ),
            (
                json!(300),
                "3a5a53aa0dd823b00b6fb7ebfa8d7c053a0cc97d6e453684dfadff5260172f2e",
                "ba4jcaos2kova3wbdwafw7n7l7kgxybj2btex23sfg2cn7lp7kjqbolzo",
                "baedreib2ljj2udoyeoyaw35x5p5i27afhigms7loiu3ijx5n75jgafzpfy",
            ),
            (
                json!(1.5),
                "68146588a213362b3d1146a6ac20d7e26f992437f911e6ddda5eb414d4136769",
                "ba4jca2aumwekeezwfm6rcrvgvqqnpytptesdp6ir43o5uxvuctkbgz3j",
                "baedreidicrsyriqtgyvt2ekgu2wcbv7cn6msin7zchtn3ws6wqknie3hne",
            ),
            (
                json!("a"),
                "ff7dbc36db2126e268247aa807a44cb626d95c19e5f6a890b209c1b5fd04cef2",
                "ba4jcb735xq3nwijg4juci6via6seznrg3fobtzpwvcilecobwx6qjtxs",
                "baedreih7pw6dnwzbe3rgqjd2vad2itfwe3mvygpf62ujbmqjyg272bgo6i",
            ),
            (
                json!(""),
                "e97c48642f9c08b09b26e54e046b31b2ff3b82843698dcba040c47348322fcc8",
                "ba4jcb2l4jbsc7haiwcnsnzkoarvtdmx7hobiinuy3s5aidchgsbsf7gi",
                "baedreihjpregil44bcyjwjxfjycgwmns745yfbbwtdolubami42igix4za",
            ),
            (
                json!({"/": {"bytes": "AQID"}}),
                "9900be55e017c35e6ecc6ea8f19ae38db6df5bf53d8129dc87f7acafd5c3988f",
                "ba4jcbgiaxzk6af6dlzxmy3vi6gnohdnw35n7kpmbfhoip55mv7k4hgep",
                "baedreiezac7flyaxynpg5tdovdyzvy4nw3pvx5j5qeu5zb7xvsx5lq4yr4",
            ),
            (
                json!([]),
                "7de22fdc14f1284c62661b2ef7350c0c3f14a6bb3ebfa97eea0e188bec775af7",
                "ba4jca7pcf7obj4jijrrgmgzo642qydb7cstlwpv7vf7oudqyrpwhowxx",
                "baedreid54ix5yfhrfbggezq3f33tkdamh4kknoz6x6ux52qodcf6y52264",
            ),
            (
                json!([1]),
                "41260e81e09c37f04b3ca46b0ca31e85979f28abf4c9d63ba20950d9255aa430",
                "ba4jcaqjgb2a6bhbx6bftzjdlbsrr5bmxt4ukx5gj2y52eckq3esvvjbq",
                "baedreicbeyhidye4g7yewpfenmgkghufs6psrk7uzhldxiqjkdmskwvega",
            ),
            (
                json!([1, 2]),
                "2079e147ec2269487c191b81e4e3f2d8a4d0756875383f19bb7e712ba4cfaf71",
                "ba4jcaidz4fd6yitjjb6bsg4b4tr7fwfe2b2wq5jyh4m3w7trfosm7l3r",
                "baedreibaphqup3bcnfehygi3qhsoh4wyutihk2dvha7rto36oev2jt5poe",
            ),
            (
                json!({}),
                "89585db346dfdedaafd9fd665258632f07cf0a49ede627c6bfd986f7fe95e0ac",
                "ba4jcbckylwzunx663kx5t7lgkjmgglyhz4fet3pge7dl7wmg677jlyfm",
                "baedreiejlbo3grw733nk7wp5mzjfqyzpa7hquspn4yt4np6zq3375fpavq",
            ),
            (
                json!({"a": 1}),
                "f4886e260081de0f51380af20b42f1234033785c39127f9ca3a8c747f2ab6924",
                "ba4jcb5einytabao6b5itqcxsbnbpci2agn4fyoisp6okhkghi7zkw2je",
                "baedreihurbxcmaeb3yhvcoak6ifuf4jdiazxqxbzcj7zzi5iy5d7fk3jeq",
            ),
            (
                json!([{"/": "baedreibqvxp76ec6hnqsu54yurdkdoc7fg4ufwmk4da2vbv4liupx56544"}]),
                "0a5f27aba9afde9068de4112651fc4171df7647b181c983e559309213438cac3",
                "ba4jcacs7e6v2tl66sbun4qismup4ify565shwga4ta7fleyjee2drswd",
                "baedreiakl4t2xknp32igrxsbcjsr7raxdx3wi6yydsmd4vmtbeqtiogkym",
            ),
            (
                json!({"b": [true, null], "a": 1}),
                "f6dbb365f5534c3263f52b061ad6a9b82d27b900352c60adfed51efc79e6fed7",
                "ba4jcb5w3wns7ku2mgjr7kkygdllktobne64qanjmmcw75vi67r46n7wx",
                "baedreihw3ozwl5ktjqzgh5jlaynnnknyfut3sabvfrqk37wvd36htzx624",
            ),
        ];
        for (value, digest, url, link) in cases {
            let reference = Reference::of(&value).expect("reference");
            assert_eq!(hex(reference.digest()), digest, "{value}");
            assert_eq!(reference.to_url_form(), url, "{value}");
            assert_eq!(reference.to_link(), link, "{value}");
            assert_eq!(Reference::parse(url), Ok(reference));
            assert_eq!(Reference::parse(link), Ok(reference));
        }
    }

    #[test]
    fn numbers_strings_and_key_order_follow_merkle_reference() {
        let url = |value: Value| Reference::of(&value).expect("reference").to_url_form();
        // Integral doubles are integers, as Number.isInteger says: 1.0, 1e300 and 2^53 too.
        assert_eq!(url(json!(1.0)), url(json!(1)));
        assert_eq!(
            url(json!(9007199254740992.0)),
            "ba4jcbig5hqi67fywfks5r6uh6tabwvkfi6gvln5wd4hifo735mgbhq2q"
        );
        assert_eq!(
            url(json!(18446744073709551616.0)),
            "ba4jca4d3ac2xidjzgj2wmrd3qcp5sizmiy6fv2kga4eb3zrobigfr6pb"
        );
        assert_eq!(
            url(json!(1e300)),
            "ba4jcaos2sukbisqkv3amepgqqkm4ajjpdmmtsyltlmnxtnuhs6jrth7o"
        );
        assert_eq!(
            url(json!(0.1)),
            "ba4jcbwqm7x3k2kwls2xjs4ndkny35ubqtmonggu3mx2exjzy2i77aiiu"
        );
        assert_eq!(
            url(json!(-2.5)),
            "ba4jcb7jlqqec7t3eruxi2surorww7d3iyvfnbavygzdenl6rhkkoifle"
        );
        assert_eq!(
            url(json!(-129)),
            "ba4jcb75ziwi3hpf4ljf2vwzxqpvaqerjfi54n6vydl4ubq4beslrsltc"
        );
        assert_eq!(
            url(json!("héllo 😀")),
            "ba4jcbvmeonazwvraxgjektyvvwgjoagt5t2iccysodhfskq3edb44h5l"
        );
        assert_eq!(
            url(json!([[]])),
            "ba4jcbqzv5j6mujn7smorp2pwieb6au46rv4qam6i4t3snjc6spmqhv66"
        );
        assert_eq!(
            url(json!({"": null})),
            "ba4jcbtsbar7amsud2qkndyi7bg7lqe64w3jem7tzilqtfmk4x677u7bg"
        );
        assert_eq!(
            url(json!({"ä": 1, "B": 2, "a": 3})),
            "ba4jcalrhjof4hu3jlw2wivhc5fkkcdaiknynxoxqngyf5jwr5qhifi33"
        );
        // UTF-8 order, not UTF-16's.
        assert_eq!(
            url(json!({"\u{ffff}": 1, "😀": 2})),
            "ba4jcb5ct32t5f4ozrj73yan6auevhbxyybqcu34qhy5kdvy2dssks322"
        );
        assert_eq!(
            url(json!({"synopsys": {}})),
            "ba4jcbj7hidyfakgx3qrmnxyfjkl6bu7bfggf37k5r5mm73thwwa7ojjq"
        );
        // A reference hashes to itself.
        let null = Reference::of(&json!(null)).expect("null");
        assert_eq!(Reference::of(&null.to_json()), Ok(null));
    }

    #[test]
    fn sleb128_matches_its_reference_examples() {
        let cases: [(i128, &str); 12] = [
            (0, "00"),
            (1, "01"),
            (63, "3f"),
            (64, "c000"),
            (-1, "7f"),
            (-64, "40"),
            (-65, "bf7f"),
            (127, "ff00"),
            (128, "8001"),
            (300, "ac02"),
            (-129, "ff7e"),
            (1 << 64, "80808080808080808002"),
        ];
        for (value, expected) in cases {
            assert_eq!(hex(&integer_payload(value)), expected, "{value}");
        }
    }

    /// xorshift64: enough randomness for test values, the same every run.
    fn step(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    /// A JSON value from `seed`'s stream: what `JSON.parse` reads alike (integers within
    /// 2^53, finite doubles, any strings), nested up to `depth`.
    fn random_value(seed: &mut u64, depth: u32) -> Value {
        let pick = step(seed) % if depth == 0 { 6 } else { 8 };
        let words = [
            "", "a", "B", "é", "😀", "\u{ffff}", "0", "10", "01", "/", "?x", "a b",
        ];
        match pick {
            0 => Value::Null,
            1 => Value::Bool(step(seed).is_multiple_of(2)),
            2 => json!((step(seed) % (1 << 41)).cast_signed() - (1 << 40)),
            3 => json!((step(seed) % 2_000_000).cast_signed() as f64 / 1000.0 - 999.5),
            4 => json!(if step(seed).is_multiple_of(2) {
                -0.0
            } else {
                1e21
            }),
            5 => json!(words[(step(seed) % words.len() as u64) as usize]),
            6 => Value::Array(
                (0..step(seed) % 5)
                    .map(|_| random_value(seed, depth - 1))
                    .collect(),
            ),
            _ => {
                let keys = step(seed) % 5;
                let mut map = serde_json::Map::new();
                for _ in 0..keys {
                    // Not "/": alone, it makes a link in DAG-JSON, which JSON.parse does not read.
                    let key = words[(step(seed) % words.len() as u64) as usize].replace('/', "//");
                    map.insert(key, random_value(seed, depth - 1));
                }
                Value::Object(map)
            }
        }
    }

    /// merkle-reference 1.1.0 itself, run by Node (`.ci/install-tools` installs it, pinned,
    /// in target/npm-judges), on values it reads as we do.
    #[test]
    fn agrees_with_merkle_reference_on_random_values() {
        use std::io::Write;
        let judge = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/npm-judges");
        if !judge.join("node_modules/merkle-reference").is_dir() {
            assert!(
                std::env::var_os("TOOLSHED_REQUIRE_TOOLS").is_none(),
                "merkle-reference is required here: run .ci/install-tools"
            );
            eprintln!("skipped: merkle-reference is not installed");
            return;
        }
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let values: Vec<Value> = (0..400).map(|_| random_value(&mut seed, 3)).collect();
        let mut node = std::process::Command::new("node")
            .arg(judge.join("refer.mjs"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("node");
        let mut input = node.stdin.take().expect("stdin");
        for value in &values {
            writeln!(input, "{value}").expect("write");
        }
        drop(input);
        let output = node.wait_with_output().expect("node's answer");
        assert!(output.status.success(), "node failed");
        let theirs: Vec<String> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(theirs.len(), values.len());
        for (value, their) in values.iter().zip(&theirs) {
            let ours = Reference::of(value).expect("reference").to_url_form();
            assert_eq!(&ours, their, "{value}");
        }
    }

    #[test]
    fn bad_ids_and_links_are_refused() {
        assert!(Reference::parse("ba4jc").is_err());
        assert!(Reference::parse("bafkreigh2akiscaildc").is_err());
        assert!(Reference::parse("not base32!").is_err());
        assert!(Reference::of(&json!({"/": 3})).is_err());
        assert!(Reference::of(&json!({"/": {"bytes": "@@"}})).is_err());
        // "/" beside other keys is an ordinary key.
        assert!(Reference::of(&json!({"/": 3, "a": 1})).is_ok());
    }
}

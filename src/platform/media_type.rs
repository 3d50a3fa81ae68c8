//! What kind of media bytes are, read from their first bytes (never from a name or a
//! header a sender chose).

/// The image type of `bytes`: PNG, JPEG, GIF or WebP.
pub fn image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_types_are_read_from_the_bytes() {
        assert_eq!(image(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(image(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(image(b"GIF89a.."), Some("image/gif"));
        assert_eq!(image(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(image(b"<svg"), None);
    }
}

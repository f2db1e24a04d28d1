//! PURE: what the first bytes of a bundle are. Used to refuse a bundle whose declared type
//! does not match its content, with an error that says what it really is.

/// What the leading bytes look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Gzip,
    Zip,
    Tar,
    Bzip2,
    Xz,
    Zstd,
    Empty,
    Unknown,
}

impl Content {
    pub fn describe(self) -> &'static str {
        match self {
            Content::Gzip => "a gzip stream",
            Content::Zip => "a zip archive",
            Content::Tar => "a tar archive",
            Content::Bzip2 => "a bzip2 stream (not supported)",
            Content::Xz => "an xz stream (not supported)",
            Content::Zstd => "a zstd stream (not supported)",
            Content::Empty => "an empty file",
            Content::Unknown => "not a tar, gzip or zip archive",
        }
    }
}

/// Bytes needed to recognise a tar header (one block).
pub const SNIFF_LEN: usize = 512;

/// Classifies the first bytes (up to [`SNIFF_LEN`]; fewer only at end of input).
pub fn sniff(head: &[u8]) -> Content {
    if head.is_empty() {
        return Content::Empty;
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Content::Gzip;
    }
    if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        return Content::Zip;
    }
    if head.starts_with(b"BZh") {
        return Content::Bzip2;
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Content::Xz;
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Content::Zstd;
    }
    if is_tar_block(head) {
        return Content::Tar;
    }
    Content::Unknown
}

/// A tar stream starts with a header whose checksum is right ("ustar" at 257 or an old-style
/// v7 header), or with the zero block of an empty archive.
pub fn is_tar_block(head: &[u8]) -> bool {
    let Some(block) = head.get(..SNIFF_LEN) else {
        return false;
    };
    if block.iter().all(|&b| b == 0) {
        return true;
    }
    header_checksum_ok(block)
}

/// The header checksum: the byte sum with the checksum field counted as spaces. Some old
/// writers summed signed bytes, so both sums are accepted.
pub fn header_checksum_ok(block: &[u8]) -> bool {
    if block.len() < SNIFF_LEN {
        return false;
    }
    let Some(stored) = parse_octal(&block[148..156]) else {
        return false;
    };
    let mut unsigned: u64 = 0;
    let mut signed: i64 = 0;
    for (i, &b) in block[..SNIFF_LEN].iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed)
}

/// Octal number field: optional leading spaces, digits, then NUL/space padding.
pub fn parse_octal(field: &[u8]) -> Option<u64> {
    let s = field
        .iter()
        .skip_while(|&&b| b == b' ')
        .take_while(|&&b| b != 0 && b != b' ');
    let mut n: u64 = 0;
    let mut any = false;
    for &b in s {
        if !(b'0'..=b'7').contains(&b) {
            return None;
        }
        n = n.checked_mul(8)?.checked_add(u64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, magic: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[..name.len()].copy_from_slice(name.as_bytes());
        b[100..108].copy_from_slice(b"0000644\0");
        b[124..136].copy_from_slice(b"00000000000\0");
        b[156] = b'0';
        b[257..257 + magic.len()].copy_from_slice(magic);
        b[148..156].fill(b' ');
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        b[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        b
    }

    #[test]
    fn recognises_each_kind() {
        assert_eq!(sniff(&[0x1f, 0x8b, 8, 0]), Content::Gzip);
        assert_eq!(sniff(b"PK\x03\x04rest"), Content::Zip);
        assert_eq!(sniff(b"PK\x05\x06rest"), Content::Zip);
        assert_eq!(sniff(b"BZh91AY"), Content::Bzip2);
        assert_eq!(sniff(b""), Content::Empty);
        assert_eq!(sniff(b"hello world"), Content::Unknown);
        assert_eq!(sniff(&header("a.txt", b"ustar\x0000")), Content::Tar);
        // old-style v7 header: no magic, checksum alone decides
        assert_eq!(sniff(&header("a.txt", b"")), Content::Tar);
        assert_eq!(sniff(&[0u8; 1024]), Content::Tar);
    }

    #[test]
    fn bad_checksum_is_not_tar() {
        let mut h = header("a.txt", b"ustar\x0000");
        h[0] = b'b';
        assert_eq!(sniff(&h), Content::Unknown);
    }

    #[test]
    fn octal_fields() {
        assert_eq!(parse_octal(b"0000644\0"), Some(0o644));
        assert_eq!(parse_octal(b"   755 \0"), Some(0o755));
        assert_eq!(parse_octal(b"\0\0\0"), None);
        assert_eq!(parse_octal(b"12a"), None);
    }
}

//! PURE: the decisions of a parallel ranged S3 download (docs/adr/0006-bundle-transfer.md,
//! "Parallel ranges") — how an object is cut into parts, what each part asks for and must get
//! back, how much may wait in memory, what an ETag promises about the bytes (S3's own rules for
//! single-part and multipart objects), and where a zip's index is in its last bytes.
//!
//! Invariants: parts cover `0..total` exactly once, in order, each at most `part_size` long; a
//! part response is accepted only if its `Content-Range` is exactly the bytes asked for, of an
//! object of the pinned length.

/// S3's largest part (and single PUT): 5 GiB.
const MAX_PART: u64 = 5 << 30;
/// S3's smallest part other than the last: 5 MiB.
const MIN_PART: u64 = 5 << 20;
/// S3's most parts in one multipart upload.
const MAX_PARTS: u64 = 10_000;

/// Number of parts of `part_size` bytes that cover `total` bytes (0 for an empty object).
pub fn count(total: u64, part_size: u64) -> u64 {
    total.div_ceil(part_size.max(1))
}

/// The inclusive byte range `(first, last)` of part `index`; None past the end.
pub fn range(index: u64, part_size: u64, total: u64) -> Option<(u64, u64)> {
    let first = index.checked_mul(part_size.max(1))?;
    (first < total).then(|| (first, total.min(first.saturating_add(part_size.max(1))) - 1))
}

/// The `Range` header asking for `first..=last`.
pub fn header(first: u64, last: u64) -> String {
    format!("bytes={first}-{last}")
}

/// The `Range` header asking for a zip's last bytes: the end-of-central-directory record (22
/// bytes) plus the longest comment it may carry (65,535 bytes).
pub fn zip_tail_header() -> String {
    format!("bytes=-{}", ZIP_TAIL)
}

/// Bytes asked for by [`zip_tail_header`].
pub const ZIP_TAIL: u64 = 22 + 65_535;

/// `Content-Range: bytes <first>-<last>/<total>` as numbers (None if malformed, or `*` total).
pub fn content_range(header: Option<&str>) -> Option<(u64, u64, u64)> {
    let spec = header?.trim().strip_prefix("bytes ")?;
    let (span, total) = spec.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let (first, last, total) = (
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    );
    (first <= last && last < total).then_some((first, last, total))
}

/// The window: bytes of parts ahead of the one being unpacked that may wait in memory. A
/// quarter of `connections` parts (16 MiB at the defaults), at least one part. When the
/// network is faster than the unpacker the window fills whatever its size and the unpacker sets
/// the pace; when it is slower, connections spread over their parts would keep about
/// (connections - 1) / 2 parts ahead, so a quarter makes the parts furthest ahead pause now
/// and then (TCP holds their bytes) while the others go on. Half was measured at 66-77 MiB
/// peak RSS at the defaults, over the 48 MiB budget (BENCHMARKS.md).
pub fn window_bytes(connections: usize, part_size: u64) -> u64 {
    let conns = u64::try_from(connections.max(1)).unwrap_or(u64::MAX);
    (conns.saturating_mul(part_size) / 4).max(part_size)
}

/// How many parts past the one being unpacked may be in flight or waiting: enough for every
/// connection to have one while earlier parts wait in the window, and no more (it bounds the
/// number of tasks, not the bytes; the window does that).
pub fn parts_ahead(connections: usize) -> u64 {
    u64::try_from(connections.max(1))
        .unwrap_or(u64::MAX)
        .saturating_mul(2)
}

/// What an ETag says about the object's bytes, as S3 defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagKind {
    /// A single-part upload without SSE-KMS or SSE-C: the MD5 of the whole body.
    Md5([u8; 16]),
    /// A multipart upload of this many parts: the MD5 of the parts' MD5s, then `-<parts>`.
    Multipart(u64),
    /// Any other form (SSE-KMS or SSE-C objects, other stores): only its constancy is checked.
    Opaque,
}

/// Classifies an ETag (quotes ignored). `encrypted_opaque`: the object is SSE-KMS, DSSE-KMS
/// or SSE-C, whose single-part ETags are not the MD5 of the body.
pub fn etag_kind(etag: &str, encrypted_opaque: bool) -> EtagKind {
    let bare = etag.replace('"', "");
    if let Some((hash, n)) = bare.split_once('-') {
        if is_hex(hash, 32) && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = n.parse() {
                return EtagKind::Multipart(n);
            }
        }
        return EtagKind::Opaque;
    }
    if encrypted_opaque || !is_hex(&bare, 32) {
        return EtagKind::Opaque;
    }
    let mut md5 = [0u8; 16];
    for (i, byte) in md5.iter_mut().enumerate() {
        // is_hex checked every digit.
        *byte = u8::from_str_radix(&bare[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    EtagKind::Md5(md5)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether an object of `total` bytes can be a multipart upload of `parts` parts under S3's
/// limits (1..=10,000 parts, each at most 5 GiB, all but the last at least 5 MiB). None when it
/// can; else why not.
pub fn multipart_fits(parts: u64, total: u64) -> Option<String> {
    if parts == 0 || parts > MAX_PARTS {
        return Some(format!(
            "an ETag of {parts} parts (S3 allows 1 to {MAX_PARTS})"
        ));
    }
    if total > parts.saturating_mul(MAX_PART) {
        return Some(format!(
            "{total} bytes cannot be {parts} parts of at most 5 GiB"
        ));
    }
    let least = (parts - 1).saturating_mul(MIN_PART);
    if parts > 1 && total <= least {
        return Some(format!(
            "{total} bytes cannot be {parts} parts of which all but the last have at least 5 MiB"
        ));
    }
    None
}

/// Whether SSE makes a single-part ETag something other than the body's MD5: SSE-KMS
/// (`aws:kms`), DSSE-KMS (`aws:kms:dsse`) and SSE-C (a customer algorithm is announced).
pub fn etag_is_not_md5(server_side_encryption: Option<&str>, customer_algorithm: bool) -> bool {
    customer_algorithm || server_side_encryption.is_some_and(|s| s.starts_with("aws:kms"))
}

/// Lower-case hex of a digest, for messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a zip's central directory is, read from its last bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipIndex {
    /// Members the end record announces (None: the Zip64 record holds it).
    pub entries: Option<u64>,
    /// Offset of the end-of-central-directory record in the object.
    pub end_record: u64,
}

/// Why the last bytes of an object are not a usable zip index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZipIndexError {
    #[error("{total} bytes are too few for a zip (its end record alone has 22)")]
    TooShort { total: u64 },
    #[error("no zip end-of-central-directory record in its last 64 KiB")]
    NoEndRecord,
    #[error("a Zip64 end record without its locator")]
    Zip64WithoutLocator,
    #[error("the central directory ({cd_size} bytes at {cd_offset}) runs past the end record at {end_record}")]
    DirectoryPastEnd {
        cd_size: u32,
        cd_offset: u32,
        end_record: u64,
    },
}

/// Finds the end-of-central-directory record in `tail`, the object's last bytes (`tail_start`
/// is where they begin in an object of `total` bytes), and checks that the central directory
/// it points at lies before it. A Zip64 archive (the record's fields saturated, a Zip64 locator
/// just before it) is accepted on the locator alone. Err says what is wrong.
pub fn zip_index(tail: &[u8], tail_start: u64, total: u64) -> Result<ZipIndex, ZipIndexError> {
    const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
    const LOCATOR: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
    if tail.len() < 22 {
        return Err(ZipIndexError::TooShort { total });
    }
    // The last record whose comment runs exactly to the end of the object.
    let at = (0..=tail.len() - 22).rev().find(|&i| {
        tail[i..i + 4] == EOCD && i + 22 + usize::from(le16(&tail[i + 20..])) == tail.len()
    });
    let Some(i) = at else {
        return Err(ZipIndexError::NoEndRecord);
    };
    let end_record = tail_start + i as u64;
    let entries = le16(&tail[i + 10..]);
    let cd_size = le32(&tail[i + 12..]);
    let cd_offset = le32(&tail[i + 16..]);
    let zip64 = entries == u16::MAX || cd_size == u32::MAX || cd_offset == u32::MAX;
    if zip64 {
        let has_locator = i >= 20 && tail[i - 20..i - 16] == LOCATOR;
        return if has_locator {
            Ok(ZipIndex {
                entries: None,
                end_record,
            })
        } else {
            Err(ZipIndexError::Zip64WithoutLocator)
        };
    }
    if u64::from(cd_offset) + u64::from(cd_size) > end_record {
        return Err(ZipIndexError::DirectoryPastEnd {
            cd_size,
            cd_offset,
            end_record,
        });
    }
    Ok(ZipIndex {
        entries: Some(u64::from(entries)),
        end_record,
    })
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_cover_the_object_once_in_order() {
        for (total, size) in [(0u64, 8u64), (1, 8), (8, 8), (9, 8), (17, 8), (100, 7)] {
            let n = count(total, size);
            let mut next = 0;
            for i in 0..n {
                let (first, last) = range(i, size, total).unwrap();
                assert_eq!(first, next);
                assert!(last >= first && last - first < size);
                next = last + 1;
            }
            assert_eq!(next, total, "total {total} size {size}");
            assert_eq!(range(n, size, total), None);
        }
        assert_eq!(header(8, 15), "bytes=8-15");
        assert_eq!(zip_tail_header(), "bytes=-65557");
    }

    #[test]
    fn content_ranges() {
        assert_eq!(content_range(Some("bytes 0-7/20")), Some((0, 7, 20)));
        assert_eq!(content_range(Some(" bytes 8-19/20 ")), Some((8, 19, 20)));
        assert_eq!(content_range(Some("bytes 8-19/*")), None);
        assert_eq!(content_range(Some("bytes 9-8/20")), None);
        assert_eq!(content_range(Some("bytes 0-20/20")), None);
        assert_eq!(content_range(None), None);
    }

    #[test]
    fn window_is_a_quarter_of_the_connections_parts_and_at_least_one() {
        assert_eq!(window_bytes(8, 8 << 20), 16 << 20);
        assert_eq!(window_bytes(16, 8 << 20), 32 << 20);
        assert_eq!(window_bytes(1, 8 << 20), 8 << 20);
        assert_eq!(window_bytes(0, 100), 100);
        assert_eq!(parts_ahead(8), 16);
    }

    #[test]
    fn etag_kinds() {
        let md5 = "\"9e107d9d372bb6826bd81d3542a419d6\"";
        let EtagKind::Md5(d) = etag_kind(md5, false) else {
            panic!()
        };
        assert_eq!(hex(&d), "9e107d9d372bb6826bd81d3542a419d6");
        assert_eq!(etag_kind(md5, true), EtagKind::Opaque);
        assert_eq!(
            etag_kind("\"9e107d9d372bb6826bd81d3542a419d6-3\"", false),
            EtagKind::Multipart(3)
        );
        assert_eq!(etag_kind("abc", false), EtagKind::Opaque);
        assert_eq!(
            etag_kind("9e107d9d372bb6826bd81d3542a419d6-x", false),
            EtagKind::Opaque
        );
        assert!(etag_is_not_md5(Some("aws:kms"), false));
        assert!(etag_is_not_md5(Some("aws:kms:dsse"), false));
        assert!(etag_is_not_md5(None, true));
        assert!(!etag_is_not_md5(Some("AES256"), false));
    }

    #[test]
    fn multipart_limits() {
        assert_eq!(multipart_fits(3, 11 << 20), None);
        assert_eq!(multipart_fits(1, 1), None);
        assert!(multipart_fits(0, 1).is_some());
        assert!(multipart_fits(10_001, 1 << 40).is_some());
        assert!(
            multipart_fits(3, 10 << 20).is_some(),
            "two full parts need > 10 MiB"
        );
        assert!(multipart_fits(1, (5 << 30) + 1).is_some());
    }

    fn eocd(entries: u16, cd_size: u32, cd_offset: u32, comment: &[u8]) -> Vec<u8> {
        let mut v = vec![0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0];
        v.extend(entries.to_le_bytes());
        v.extend(entries.to_le_bytes());
        v.extend(cd_size.to_le_bytes());
        v.extend(cd_offset.to_le_bytes());
        v.extend((comment.len() as u16).to_le_bytes());
        v.extend(comment);
        v
    }

    #[test]
    fn zip_end_records() {
        let mut obj = vec![0u8; 100];
        obj.extend(eocd(2, 40, 60, b"a comment with PK\x05\x06 inside"));
        let total = obj.len() as u64;
        let ix = zip_index(&obj[10..], 10, total).unwrap();
        assert_eq!(ix.entries, Some(2));
        assert_eq!(ix.end_record, 100);
        let mut bad = vec![0u8; 100];
        bad.extend(eocd(2, 60, 60, b""));
        assert!(zip_index(&bad, 0, bad.len() as u64)
            .unwrap_err()
            .to_string()
            .contains("runs past"));
        assert!(zip_index(b"not a zip at all, just text....", 0, 31).is_err());
        assert!(zip_index(b"short", 0, 5)
            .unwrap_err()
            .to_string()
            .contains("too few"));
        let mut z64 = vec![0u8; 80];
        z64.extend([0x50, 0x4b, 0x06, 0x07]);
        z64.extend([0u8; 16]);
        z64.extend(eocd(u16::MAX, u32::MAX, u32::MAX, b""));
        assert_eq!(zip_index(&z64, 0, z64.len() as u64).unwrap().entries, None);
    }
}

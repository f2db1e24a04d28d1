//! PURE: a minimal BER/DER tag-length-value walker, enough to find the exact bytes that were
//! signed (signed attributes, certificate TBS parts) and to read BER output of OpenSSL's
//! streaming mode (indefinite lengths, constructed OCTET STRINGs).
//!
//! Invariant: never reads past its input; nesting is bounded; every error says what was
//! malformed.

/// What was malformed in BER/DER input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TlvError {
    #[error("element with tag 0x{tag:02x} is not constructed")]
    NotConstructed { tag: u8 },
    #[error("OCTET STRING nesting too deep")]
    OctetsTooDeep,
    #[error("expected an OCTET STRING, found tag 0x{tag:02x}")]
    NotOctetString { tag: u8 },
    #[error("nesting too deep")]
    TooDeep,
    #[error("unexpected end of data")]
    End,
    #[error("unexpected end of data in a length")]
    EndInLength,
    #[error("multi-byte tag 0x{tag:02x} is not supported")]
    MultiByteTag { tag: u8 },
    #[error("length of {bytes} bytes is too long")]
    LengthTooLong { bytes: usize },
    #[error("element of {len} bytes runs past the end of the data")]
    PastEnd { len: usize },
    #[error("indefinite length on a primitive element")]
    IndefinitePrimitive,
    #[error("indefinite-length element has no end-of-contents")]
    NoEndOfContents,
}

/// One element: its tag byte, whether it is constructed, its content and its whole encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub full: &'a [u8],
}

impl<'a> Tlv<'a> {
    pub fn constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// The children of a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, TlvError> {
        if !self.constructed() {
            return Err(TlvError::NotConstructed { tag: self.tag });
        }
        all(self.content)
    }

    /// The bytes of an OCTET STRING, primitive or (BER) constructed. Constructed strings
    /// nest at most [`MAX_DEPTH`] deep: each level costs a stack frame, and a spec of a few
    /// dozen KiB of nested headers would otherwise overflow an agent thread's 2 MiB stack.
    pub fn octets(&self) -> Result<Vec<u8>, TlvError> {
        let mut out = Vec::new();
        self.octets_into(&mut out, 0)?;
        Ok(out)
    }

    fn octets_into(&self, out: &mut Vec<u8>, depth: u32) -> Result<(), TlvError> {
        if depth > MAX_DEPTH {
            return Err(TlvError::OctetsTooDeep);
        }
        if self.tag & 0x1f != 0x04 {
            return Err(TlvError::NotOctetString { tag: self.tag });
        }
        if !self.constructed() {
            out.extend_from_slice(self.content);
            return Ok(());
        }
        for c in self.children()? {
            c.octets_into(out, depth + 1)?;
        }
        Ok(())
    }
}

const MAX_DEPTH: u32 = 64;

/// Reads one element from the front of `input`; returns it and the rest.
pub fn read(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    read_at(input, 0)
}

fn read_at(input: &[u8], depth: u32) -> Result<(Tlv<'_>, &[u8]), TlvError> {
    if depth > MAX_DEPTH {
        return Err(TlvError::TooDeep);
    }
    let tag = *input.first().ok_or(TlvError::End)?;
    if tag & 0x1f == 0x1f {
        return Err(TlvError::MultiByteTag { tag });
    }
    let first = *input.get(1).ok_or(TlvError::EndInLength)?;
    let (header, len) = if first < 0x80 {
        (2usize, Some(first as usize))
    } else if first == 0x80 {
        (2, None)
    } else {
        let n = (first & 0x7f) as usize;
        if n > 4 {
            return Err(TlvError::LengthTooLong { bytes: n });
        }
        let bytes = input.get(2..2 + n).ok_or(TlvError::EndInLength)?;
        let len = bytes.iter().fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (2 + n, Some(len))
    };
    match len {
        Some(len) => {
            let end = header
                .checked_add(len)
                .filter(|e| *e <= input.len())
                .ok_or(TlvError::PastEnd { len })?;
            Ok((
                Tlv {
                    tag,
                    content: &input[header..end],
                    full: &input[..end],
                },
                &input[end..],
            ))
        }
        None => {
            if tag & 0x20 == 0 {
                return Err(TlvError::IndefinitePrimitive);
            }
            let mut rest = &input[header..];
            loop {
                if rest.len() >= 2 && rest[0] == 0 && rest[1] == 0 {
                    let content_len = input.len() - header - rest.len();
                    let end = header + content_len + 2;
                    return Ok((
                        Tlv {
                            tag,
                            content: &input[header..header + content_len],
                            full: &input[..end],
                        },
                        &input[end..],
                    ));
                }
                if rest.is_empty() {
                    return Err(TlvError::NoEndOfContents);
                }
                let (_, r) = read_at(rest, depth + 1)?;
                rest = r;
            }
        }
    }
}

/// Checks that every element of `input`, and every element inside each constructed one, ends
/// within its parent. The `der` crate sizes a buffer from an element's stated length before
/// it reads the bytes, so a certificate of 2 KiB whose name claims a 190 MiB string made the
/// agent allocate 190 MiB (found by the `pkcs7` fuzz target). Every DER decode of outside
/// bytes runs this first; primitive contents that themselves hold DER (extension values) are
/// checked where they are decoded.
pub fn check_tree(input: &[u8]) -> Result<(), TlvError> {
    check_at(input, 0)
}

fn check_at(mut input: &[u8], depth: u32) -> Result<(), TlvError> {
    if depth > MAX_DEPTH {
        return Err(TlvError::TooDeep);
    }
    while !input.is_empty() {
        let (t, rest) = read(input)?;
        if t.constructed() {
            check_at(t.content, depth + 1)?;
        }
        input = rest;
    }
    Ok(())
}

/// All elements of `input`, which must be nothing else.
pub fn all(mut input: &[u8]) -> Result<Vec<Tlv<'_>>, TlvError> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let (t, rest) = read(input)?;
        out.push(t);
        input = rest;
    }
    Ok(out)
}

/// `content` re-wrapped with another tag in definite-length form (signed attributes are
/// signed as a SET OF, tag 0x31, although they travel as `[0] IMPLICIT`).
pub fn rewrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite() {
        let der = [0x30, 0x06, 0x04, 0x01, b'a', 0x04, 0x01, b'b', 0xff];
        let (t, rest) = read(&der).unwrap();
        assert_eq!(rest, [0xff]);
        let kids = t.children().unwrap();
        assert_eq!(kids[1].octets().unwrap(), b"b");
        // BER: constructed OCTET STRING of two parts, indefinite length.
        let ber = [
            0x24, 0x80, 0x04, 0x02, b'h', b'i', 0x04, 0x01, b'!', 0x00, 0x00,
        ];
        let (t, rest) = read(&ber).unwrap();
        assert!(rest.is_empty());
        assert_eq!(t.octets().unwrap(), b"hi!");
        assert_eq!(t.full.len(), ber.len());
    }

    #[test]
    fn malformed() {
        assert!(read(&[]).is_err());
        assert_eq!(
            read(&[0x30, 0x05, 0x00]).unwrap_err().to_string(),
            "element of 5 bytes runs past the end of the data"
        );
        assert_eq!(
            read(&[0x30, 0x80, 0x04, 0x00]).unwrap_err(),
            TlvError::NoEndOfContents
        );
        assert!(read(&[0x04, 0x80]).is_err());
        assert!(read(&[0x30, 0x89, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
        let mut deep = Vec::new();
        for _ in 0..100 {
            deep.extend([0x30, 0x80]);
        }
        assert!(read(&deep).is_err());
    }

    /// `depth` constructed OCTET STRINGs around "x", definite lengths, built outside-in in
    /// linear time.
    fn nested_octets(depth: usize) -> Vec<u8> {
        let header = |len: usize| -> Vec<u8> {
            let mut h = vec![0x24];
            if len < 0x80 {
                h.push(len as u8);
            } else {
                let b: Vec<u8> = len
                    .to_be_bytes()
                    .into_iter()
                    .skip_while(|b| *b == 0)
                    .collect();
                h.push(0x80 | b.len() as u8);
                h.extend(b);
            }
            h
        };
        let mut sizes = vec![3usize]; // 04 01 'x'
        for _ in 0..depth {
            let inner = *sizes.last().unwrap();
            sizes.push(inner + header(inner).len());
        }
        let mut out = Vec::with_capacity(sizes[depth]);
        for level in (0..depth).rev() {
            out.extend(header(sizes[level]));
        }
        out.extend([0x04, 0x01, b'x']);
        out
    }

    /// Found while writing the PKCS#7 fuzz target: nested constructed OCTET STRINGs recursed
    /// once per level; on a 2 MiB stack 30,000 levels (130 KiB of eContent) overflowed it, a
    /// SIGSEGV of the whole agent.
    #[test]
    fn deeply_nested_octet_strings_are_refused_not_recursed() {
        let ok = nested_octets(MAX_DEPTH as usize);
        assert_eq!(read(&ok).unwrap().0.octets().unwrap(), b"x");
        let deep = nested_octets(200_000);
        let (t, rest) = read(&deep).unwrap();
        assert!(rest.is_empty());
        assert_eq!(
            t.octets().unwrap_err().to_string(),
            "OCTET STRING nesting too deep"
        );
    }

    #[test]
    fn check_tree_refuses_an_inner_length_past_its_parent() {
        // SEQUENCE { SEQUENCE { UTF8String claiming 0x0bd8_0000 bytes } }: each outer
        // length is consistent with the input, the inner one is not.
        let bad = [0x30, 0x08, 0x30, 0x06, 0x0c, 0x84, 0x0b, 0xd8, 0x00, 0x00];
        assert!(read(&bad).is_ok(), "the outer element alone looks fine");
        let err = check_tree(&bad).unwrap_err();
        assert!(matches!(err, TlvError::PastEnd { .. }), "{err}");
        let good = [0x30, 0x05, 0x30, 0x03, 0x0c, 0x01, b'a'];
        assert_eq!(check_tree(&good), Ok(()));
        let deep: Vec<u8> = nested_octets(MAX_DEPTH as usize + 8);
        assert!(check_tree(&deep).is_err(), "depth is bounded");
    }

    #[test]
    fn rewrap_lengths() {
        assert_eq!(rewrap(0x31, &[1, 2]), [0x31, 2, 1, 2]);
        let long = vec![0u8; 300];
        let w = rewrap(0x31, &long);
        assert_eq!(&w[..4], &[0x31, 0x82, 0x01, 0x2c]);
        assert_eq!(read(&w).unwrap().0.content.len(), 300);
    }
}

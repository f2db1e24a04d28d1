//! Zip producer. Zip keeps its index (the central directory) at the end, so it is read from a
//! seekable file, never from a stream; members are then decompressed one at a time, in chunks.
//!
//! Like Info-ZIP `unzip`: Unix mode bits come from the external attributes when the archive
//! was made on Unix, stored symlinks become symlinks, times come from the extended-timestamp
//! field or else the DOS time read as local time. Ownership is never restored, and
//! setuid/setgid/sticky bits are dropped (as `unzip` does without `-K`).

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use zip::ExtraField;

use super::entry::{shown, EntryHead, Kind};
use super::error::BundleError;
use super::pipeline::{Msg, Stop, Tx};

const S_IFMT: u32 = 0o170000;
/// A symlink target longer than PATH_MAX cannot be created anyway.
const MAX_LINK: u64 = 4096;

/// File type from the Unix mode in the external attributes, or from the name.
pub fn kind_of(unix_mode: Option<u32>, name_is_dir: bool) -> Kind {
    match unix_mode.map(|m| m & S_IFMT) {
        Some(0o040000) => Kind::Dir,
        Some(0o120000) => Kind::Symlink { target: Vec::new() },
        Some(0o020000) => Kind::Special("character device"),
        Some(0o060000) => Kind::Special("block device"),
        Some(0o010000) => Kind::Special("fifo"),
        Some(0o140000) => Kind::Special("socket"),
        _ if name_is_dir => Kind::Dir,
        _ => Kind::File,
    }
}

/// DOS date/time fields are local time without a zone, as `unzip` reads them.
fn dos_to_unix(dt: zip::DateTime) -> Option<i64> {
    crate::sys::mktime_local(
        i32::from(dt.year()),
        u32::from(dt.month()),
        u32::from(dt.day()),
        u32::from(dt.hour()),
        u32::from(dt.minute()),
        u32::from(dt.second()),
    )
}

/// What unpacking needs as the central directory declares it: the members' sizes plus a
/// `block` each. Sizes can lie (a bomb declares little); the writer counts what it writes.
pub fn need(archive: &zip::ZipArchive<File>, block: u64) -> u64 {
    let declared = archive
        .decompressed_size()
        .map_or(0, |n| u64::try_from(n).unwrap_or(u64::MAX));
    let members = u64::try_from(archive.len()).unwrap_or(u64::MAX);
    declared.saturating_add(members.saturating_mul(block))
}

/// Setuid/setgid/sticky bits are dropped, as `unzip` without `-K` does; with
/// `reject_setuid` they are kept so the writer refuses the member instead.
pub fn produce(
    mut archive: zip::ZipArchive<File>,
    bundle: &Path,
    reject_setuid: bool,
    tx: &Tx,
) -> Result<(), Stop> {
    let zerr = |entry: String, source| {
        Stop::Failed(BundleError::Zip {
            bundle: bundle.to_path_buf(),
            entry,
            source,
        })
    };
    for i in 0..archive.len() {
        let name_i = match archive.name_for_index(i) {
            Some(Ok(n)) => crate::names::encode(n.as_bytes()).into_owned(),
            _ => format!("#{i}"),
        };
        let mut f = archive.by_index(i).map_err(|e| zerr(name_i, e))?;
        // Names are bytes: with the UTF-8 flag (or a Unicode path field, which the zip crate
        // applies when its checksum matches) they are UTF-8; without it they are kept as
        // stored, like `unzip` on Linux, never transcoded from CP437 (which could make two
        // names one).
        let raw_name = f.name_raw().to_vec();
        let shown = shown(&raw_name);
        let read_err = |e: io::Error| {
            Stop::Failed(BundleError::Read {
                bundle: bundle.to_path_buf(),
                entry: shown.clone(),
                source: e,
            })
        };
        // Modes the zip crate synthesises for DOS-made archives are not real; unzip leaves
        // such members to the umask.
        let (unix_mode, raw_special) = match f.system() {
            zip::System::Unix => (f.unix_mode(), (f.external_attributes() >> 16) & 0o6000),
            _ => (None, 0),
        };
        let special = if reject_setuid { raw_special } else { 0 };
        let mut kind = kind_of(unix_mode, raw_name.ends_with(b"/"));
        if let Kind::Symlink { target } = &mut kind {
            (&mut f)
                .take(MAX_LINK + 1)
                .read_to_end(target)
                .map_err(read_err)?;
            if target.len() as u64 > MAX_LINK {
                return Err(Stop::Failed(BundleError::Malformed {
                    bundle: bundle.to_path_buf(),
                    entry: shown,
                    detail: "symlink target longer than 4096 bytes".into(),
                }));
            }
        }
        let ext_time = f.extra_data_fields().find_map(|x| match x {
            ExtraField::ExtendedTimestamp(ts) => ts.mod_time(),
            _ => None,
        });
        let mtime = ext_time
            .map(i64::from)
            .or_else(|| f.last_modified().and_then(dos_to_unix))
            .map(|s| (s, 0));
        let is_file = kind == Kind::File;
        tx.send(Msg::Begin(EntryHead {
            raw_name,
            kind,
            mode: unix_mode.map(|m| (m & 0o777) | special),
            mtime,
            owner: None,
        }))?;
        if !is_file {
            continue;
        }
        tx.pump(&mut f, read_err)?;
        tx.send(Msg::End)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_mode() {
        assert_eq!(kind_of(Some(0o100644), false), Kind::File);
        assert_eq!(kind_of(Some(0o040755), false), Kind::Dir);
        assert_eq!(kind_of(None, true), Kind::Dir);
        assert_eq!(kind_of(None, false), Kind::File);
        assert_eq!(kind_of(Some(0o644), true), Kind::Dir);
        assert!(matches!(
            kind_of(Some(0o120777), false),
            Kind::Symlink { .. }
        ));
        assert_eq!(kind_of(Some(0o010644), false), Kind::Special("fifo"));
        assert_eq!(
            kind_of(Some(0o020644), false),
            Kind::Special("character device")
        );
    }
}

#[cfg(test)]
mod need_tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn need_is_the_declared_sizes_plus_a_block_per_member() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("b.zip");
        let mut z = zip::ZipWriter::new(File::create(&p).unwrap());
        let o = zip::write::SimpleFileOptions::default();
        z.add_directory("d/", o).unwrap();
        z.start_file("d/a", o).unwrap();
        z.write_all(&[0u8; 10_000]).unwrap();
        z.start_file("b", o).unwrap();
        z.write_all(b"hello").unwrap();
        z.finish().unwrap();
        let archive = zip::ZipArchive::new(File::open(&p).unwrap()).unwrap();
        assert_eq!(need(&archive, 4096), 10_005 + 3 * 4096);
    }
}

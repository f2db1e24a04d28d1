//! Safe streaming unpack of deployment bundles (docs/behaviour/bundles.md#local-revisions,
//! docs/behaviour/bundles.md#unpacking, docs/behaviour/install.md#modes-and-links) into the
//! deployment's archive dir.
//!
//! Invariants (always on, whatever the options):
//! * nothing is written outside the archive dir: absolute and `..`-escaping names, writes
//!   through symlinks (from the bundle or already on disk), hard links to outside, and device
//!   nodes, fifos and sockets are refused with an error naming the member;
//! * unpacked bytes are counted as written and bounded by `max_total_bytes` and, with a
//!   reserve, by the free space above it on the archive dir's file system: checked up front
//!   from what the bundle's size tells (see [`crate::space`]) and again while writing;
//! * memory stays at a few 256 KiB chunks: tar/tgz are unpacked as read (one pass, so a
//!   download can be piped in), zip members are streamed one by one from the file;
//! * names are bytes: a member's name reaches the disk as stored (zip names too: UTF-8 with
//!   the UTF-8 flag, raw bytes otherwise, never transcoded), and messages show it through
//!   [`crate::names`], so two names never become one;
//! * links are recreated as links, never followed (what leaves the revision is judged later,
//!   by `crate::links`, where something would follow a link: the install, the appspec, hooks);
//! * the declared bundle type is checked against the content (with one compatible exception:
//!   `tar` also accepts gzip-compressed tar, as GNU `tar -xf` does and GitHub tarballs need).
//!
//! A failed or refused unpack removes the archive dir (and the strip rule's temp dir) it was
//! writing; only a failure of that removal leaves anything behind, and the error says where.
//! See docs/adr/0003-bundle-safety.md.

mod detect;
mod dir;
mod entry;
mod error;
mod listing;
mod pipeline;
mod strip;
mod tar;
mod writer;
mod zip;

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

pub use detect::{sniff, Content};
pub use error::{BundleError, Unsafe};
pub use listing::{list_bundle, Listed, Node};
pub use strip::{should_strip, strip_top_level, temp_dir as strip_temp_dir};
pub(crate) use writer::current_umask;

use pipeline::{Stop, Tx};
use writer::Writer;

/// Bundle type as the deployment spec names it (defined with the spec, which is pure).
pub use crate::deployspec::{BundleType, UnknownBundleType};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackOptions {
    /// `archive_max_extraction_size`: bytes of file content one bundle may unpack to
    /// (`u64::MAX` when unset: the reserve is the bound).
    pub max_total_bytes: u64,
    /// `reject_unsafe_permissions_in_bundle`: refuse setuid/setgid files.
    pub reject_setuid: bool,
    /// Restore tar ownership (running as root and not `ignore_ownership_in_bundle`).
    pub restore_ownership: bool,
    /// `free_space_reserve`: what must stay free on the archive dir's file system. None: no
    /// free-space checks (tests and tools that unpack elsewhere).
    pub reserve: Option<crate::space::Reserve>,
}

impl UnpackOptions {
    pub fn from_config(cfg: &crate::config::Config, running_as_root: bool) -> Self {
        Self {
            max_total_bytes: cfg.archive_max_extraction_size.unwrap_or(u64::MAX),
            reject_setuid: cfg.reject_unsafe_permissions_in_bundle,
            restore_ownership: running_as_root && !cfg.ignore_ownership_in_bundle,
            reserve: Some(cfg.free_space_reserve),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackReport {
    /// Regular files and hard links.
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    /// File content bytes written.
    pub bytes: u64,
    /// Name of the lone top-level directory that was stripped
    /// (docs/behaviour/bundles.md#unpacking).
    pub stripped_top_level: Option<String>,
}

/// Unpacks a bundle file into `archive_dir` (created if missing), then strips a lone top-level
/// directory. `Directory` is delegated to [`copy_directory_bundle`].
pub fn unpack_file(
    bundle: &Path,
    kind: BundleType,
    archive_dir: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, BundleError> {
    let open_err = |source| BundleError::Read {
        bundle: bundle.to_path_buf(),
        entry: String::new(),
        source,
    };
    match kind {
        BundleType::Directory => copy_directory_bundle(bundle, archive_dir, opts),
        BundleType::Tar | BundleType::Tgz => {
            let f = File::open(bundle).map_err(open_err)?;
            let len = f.metadata().map_err(open_err)?.len();
            let need = crate::space::archive_lower_bound(space_kind(kind), len);
            unpack_tar(f, kind, bundle, archive_dir, opts, need)
        }
        BundleType::Zip => {
            let archive = open_zip(bundle, kind)?;
            let writer = Writer::open(bundle, archive_dir, opts)?;
            undo_on_error(
                archive_dir,
                (|| {
                    writer.ahead(zip::need(&archive, writer.block()))?;
                    let report = pipeline::run(bundle, writer, |tx| {
                        zip::produce(archive, bundle, opts.reject_setuid, tx)
                    })?;
                    finish_archive(bundle, archive_dir, report)
                })(),
            )
        }
    }
}

/// [`unpack_file`], with `meter` counting the bundle's bytes as they enter the unpacker (tar
/// and tgz; other kinds are unpacked as `unpack_file` does, uncounted).
pub fn unpack_file_counted(
    bundle: &Path,
    kind: BundleType,
    archive_dir: &Path,
    opts: &UnpackOptions,
    meter: &crate::meter::Meter,
) -> Result<UnpackReport, BundleError> {
    if !matches!(kind, BundleType::Tar | BundleType::Tgz) {
        return unpack_file(bundle, kind, archive_dir, opts);
    }
    let open_err = |source| BundleError::Read {
        bundle: bundle.to_path_buf(),
        entry: String::new(),
        source,
    };
    let f = File::open(bundle).map_err(open_err)?;
    let len = f.metadata().map_err(open_err)?.len();
    meter.set_totals(Some(len), None);
    let need = crate::space::archive_lower_bound(space_kind(kind), len);
    let counted = crate::meter::Counting::new(f, Some(meter.clone()));
    unpack_tar(counted, kind, bundle, archive_dir, opts, need)
}

/// Opens a zip bundle after checking that it is one; its central directory is read here.
fn open_zip(bundle: &Path, kind: BundleType) -> Result<::zip::ZipArchive<File>, BundleError> {
    let open_err = |source| BundleError::Read {
        bundle: bundle.to_path_buf(),
        entry: String::new(),
        source,
    };
    let mut f = File::open(bundle).map_err(open_err)?;
    let head = read_head(&mut f).map_err(open_err)?;
    let content = sniff(&head);
    if content != Content::Zip {
        return Err(mismatch(bundle, kind, content));
    }
    use std::io::Seek;
    f.rewind().map_err(open_err)?;
    ::zip::ZipArchive::new(f).map_err(|source| BundleError::Zip {
        bundle: bundle.to_path_buf(),
        entry: String::new(),
        source,
    })
}

fn space_kind(kind: BundleType) -> crate::space::ArchiveKind {
    match kind {
        BundleType::Tgz => crate::space::ArchiveKind::Tgz,
        BundleType::Zip => crate::space::ArchiveKind::Zip,
        _ => crate::space::ArchiveKind::Tar,
    }
}

/// Unpacks a tar or tgz stream in one pass (see [`unpack_reader_named`]); errors name the
/// bundle `<stream>`. Zip needs random access to its central directory: use [`unpack_file`].
pub fn unpack_reader<R: Read>(
    reader: R,
    kind: BundleType,
    archive_dir: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, BundleError> {
    unpack_reader_named(reader, kind, Path::new("<stream>"), archive_dir, opts)
}

/// Unpacks a tar or tgz stream in one pass, `name` naming it in errors (e.g. the bundle path
/// or an S3 key). The first block is peeked to check the declared type; a gzip stream is
/// decompressed on this thread while a second thread writes.
pub fn unpack_reader_named<R: Read>(
    reader: R,
    kind: BundleType,
    name: &Path,
    archive_dir: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, BundleError> {
    unpack_tar(reader, kind, name, archive_dir, opts, 0)
}

fn unpack_tar<R: Read>(
    mut reader: R,
    kind: BundleType,
    name: &Path,
    archive_dir: &Path,
    opts: &UnpackOptions,
    need: u64,
) -> Result<UnpackReport, BundleError> {
    if !matches!(kind, BundleType::Tar | BundleType::Tgz) {
        return Err(BundleError::Unsupported {
            bundle: name.to_path_buf(),
            what: format!("{kind} bundles cannot be unpacked from a stream"),
        });
    }
    let head = read_head(&mut reader).map_err(|source| BundleError::Read {
        bundle: name.to_path_buf(),
        entry: String::new(),
        source,
    })?;
    let content = sniff(&head);
    let gz = match (kind, content) {
        (BundleType::Tgz, Content::Gzip) | (BundleType::Tar, Content::Gzip) => true,
        (BundleType::Tar, Content::Tar) => false,
        _ => return Err(mismatch(name, kind, content)),
    };
    let whole = io::Cursor::new(head).chain(reader);
    let writer = Writer::open(name, archive_dir, opts)?;
    if let Err(e) = writer.ahead(need) {
        return undo_on_error(archive_dir, Err(e));
    }
    let produce = |tx: &Tx| -> Result<(), Stop> {
        if gz {
            let gunzip = flate2::read::MultiGzDecoder::new(whole);
            tar::produce(
                BufReader::with_capacity(64 * 1024, gunzip),
                name,
                kind,
                true,
                tx,
            )
        } else {
            tar::produce(
                BufReader::with_capacity(64 * 1024, whole),
                name,
                kind,
                false,
                tx,
            )
        }
    };
    let report = pipeline::run(name, writer, produce);
    undo_on_error(
        archive_dir,
        report.and_then(|r| finish_archive(name, archive_dir, r)),
    )
}

/// Copies a directory bundle (docs/behaviour/bundles.md#local-revisions) into `archive_dir`: modes,
/// symlinks (as links, never followed) and times kept, the same refusals and size limit as
/// archives, no stripping.
pub fn copy_directory_bundle(
    src: &Path,
    archive_dir: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, BundleError> {
    let writer = Writer::open(src, archive_dir, opts)?;
    undo_on_error(
        archive_dir,
        (|| {
            if opts.reserve.is_some() {
                writer.ahead(dir::need(src, writer.block())?)?;
            }
            dir::copy(src, writer)
        })(),
    )
}

/// Removes what a failed unpack wrote: the archive dir (and the strip rule's temp dir), when
/// they are real directories (an archive dir that is a symlink was never written through).
fn undo_on_error<T>(archive_dir: &Path, result: Result<T, BundleError>) -> Result<T, BundleError> {
    let Err(error) = result else {
        return result;
    };
    for dir in [archive_dir.to_path_buf(), strip::temp_dir(archive_dir)] {
        let is_dir = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir());
        if !is_dir {
            continue;
        }
        if let Err(source) = std::fs::remove_dir_all(&dir) {
            return Err(BundleError::LeftBehind {
                error: Box::new(error),
                path: dir,
                source,
            });
        }
    }
    Err(error)
}

fn finish_archive(
    bundle: &Path,
    archive_dir: &Path,
    mut report: UnpackReport,
) -> Result<UnpackReport, BundleError> {
    report.stripped_top_level =
        strip_top_level(archive_dir).map_err(|source| BundleError::Write {
            bundle: bundle.to_path_buf(),
            entry: "(stripping the top-level directory)".into(),
            archive_dir: archive_dir.to_path_buf(),
            source,
        })?;
    Ok(report)
}

fn mismatch(bundle: &Path, declared: BundleType, content: Content) -> BundleError {
    BundleError::TypeMismatch {
        bundle: bundle.to_path_buf(),
        declared,
        actual: content.describe(),
    }
}

/// Reads up to one tar block (less only at end of input).
fn read_head<R: Read>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(detect::SNIFF_LEN);
    r.take(detect::SNIFF_LEN as u64).read_to_end(&mut head)?;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_type_round_trip() {
        for s in ["tar", "tgz", "zip", "directory"] {
            assert_eq!(s.parse::<BundleType>().unwrap().as_str(), s);
        }
        assert_eq!(
            "TAR".parse::<BundleType>(),
            Err(UnknownBundleType("TAR".into()))
        );
    }
}

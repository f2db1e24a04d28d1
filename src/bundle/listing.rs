//! A sink that records a bundle instead of writing it, for `validate`: the same producers
//! (tar, tgz, zip, directory walk), the same type checks, the same name normalisation and
//! refusals, the same size limits and the same strip rule as an unpack, so `validate` and a
//! deployment cannot judge a bundle differently.
//!
//! Invariants: nothing is written; memory holds one node per member plus the appspec
//! candidates' bytes, each cut at [`MAX_APPSPEC_BYTES`] + 1 (their full sizes are kept, so
//! an oversized appspec is refused with its real size). The namespace is replayed exactly as
//! the writer builds it on disk: a later member replaces an earlier file or link of the same
//! name, a path through a link is refused, a directory is never replaced.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::entry::{hard_link_target, normalize, shown, EntryHead, Kind, RelPath};
use super::error::{BundleError, Unsafe};
use super::pipeline::{self, Sink};
use super::{detect, dir, space_kind, strip, tar, zip, BundleType, UnpackOptions};
use crate::appspec::MAX_APPSPEC_BYTES;
use crate::space;

/// What a path inside the bundle is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file (or a hard link to one); `mode` as the bundle gives it.
    File {
        mode: Option<u32>,
    },
    Dir,
    Symlink {
        target: Vec<u8>,
    },
}

/// A bundle as an unpack would leave it, without its contents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    /// Every path inside the revision (after the strip rule), by its components.
    pub entries: BTreeMap<Vec<OsString>, Node>,
    /// The appspec candidates' bytes (at most [`MAX_APPSPEC_BYTES`] + 1) and full sizes.
    pub texts: BTreeMap<Vec<OsString>, (Vec<u8>, u64)>,
    /// The lone top-level directory the strip rule removed.
    pub stripped_top_level: Option<String>,
    /// Content bytes, as an unpack counts them.
    pub bytes: u64,
}

impl Listed {
    /// The node at a relative path (`a/b`), `""` being the root directory.
    pub fn node(&self, rel: &str) -> Option<&Node> {
        const ROOT: Node = Node::Dir;
        let key = key_of(rel);
        if key.is_empty() {
            return Some(&ROOT);
        }
        self.entries.get(&key)
    }

    /// The kept bytes and full size of a candidate at `rel`.
    pub fn text(&self, rel: &str) -> Option<&(Vec<u8>, u64)> {
        self.texts.get(&key_of(rel))
    }
}

fn key_of(rel: &str) -> Vec<OsString> {
    match normalize(rel.as_bytes()) {
        Ok(Some(p)) => p.components().to_vec(),
        _ => Vec::new(),
    }
}

/// Lists the bundle at `path` (a directory, or a tar, tgz or zip archive told by its content)
/// as [`super::unpack_file`] would unpack it with `opts`, keeping the bytes of the files that
/// may be the appspec (`candidates`, at the top or under a lone top-level directory). With a
/// reserve in `opts`, the room is measured on the file system of `space_at` (the deployment
/// root), as a deployment would.
pub fn list_bundle(
    path: &Path,
    opts: &UnpackOptions,
    space_at: Option<&Path>,
    candidates: &[&str],
) -> Result<Listed, BundleError> {
    let read_err = |source| BundleError::Read {
        bundle: path.to_path_buf(),
        entry: String::new(),
        source,
    };
    let guard = match (opts.reserve, space_at) {
        (Some(rule), Some(at)) => Some(space::Guard::new(at, rule).map_err(read_err)?),
        _ => None,
    };
    let mut l = Listing::new(path, opts, guard, candidates);
    let meta = std::fs::metadata(path).map_err(read_err)?;
    if meta.is_dir() {
        l.ahead(dir::need(path, l.block())?)?;
        dir::list(path, &mut l)?;
        return Ok(l.finish(false));
    }
    let mut f = File::open(path).map_err(read_err)?;
    let head = super::read_head(&mut f).map_err(read_err)?;
    let kind = match detect::sniff(&head) {
        detect::Content::Gzip => BundleType::Tgz,
        detect::Content::Tar => BundleType::Tar,
        detect::Content::Zip => BundleType::Zip,
        other => {
            return Err(BundleError::Unsupported {
                bundle: path.to_path_buf(),
                what: format!(
                "not a bundle: expected a directory or a tar, tgz (gzip) or zip archive, found {}",
                other.describe()
            ),
            })
        }
    };
    drop(f);
    if kind == BundleType::Zip {
        let archive = super::open_zip(path, kind)?;
        l.ahead(zip::need(&archive, l.block()))?;
        let reject = opts.reject_setuid;
        pipeline::run_inline(path, &mut l, |tx| zip::produce(archive, path, reject, tx))?;
    } else {
        l.ahead(space::archive_lower_bound(space_kind(kind), meta.len()))?;
        let f = File::open(path).map_err(read_err)?;
        let gz = kind == BundleType::Tgz;
        pipeline::run_inline(path, &mut l, |tx| {
            if gz {
                let gunzip = flate2::read::MultiGzDecoder::new(f);
                tar::produce(io::BufReader::new(gunzip), path, kind, true, tx)
            } else {
                tar::produce(io::BufReader::new(f), path, kind, false, tx)
            }
        })?;
    }
    l.end()?;
    Ok(l.finish(true))
}

struct Listing {
    bundle: PathBuf,
    opts: UnpackOptions,
    space: Option<space::Guard>,
    /// Candidate paths, by components.
    candidates: Vec<Vec<OsString>>,
    listed: Listed,
    /// The file member being read: its key, whether its bytes are kept, its name as stored.
    open: Option<(Vec<OsString>, bool, String)>,
    total: u64,
}

impl Listing {
    fn new(
        bundle: &Path,
        opts: &UnpackOptions,
        space: Option<space::Guard>,
        candidates: &[&str],
    ) -> Self {
        Self {
            bundle: bundle.to_path_buf(),
            opts: opts.clone(),
            space,
            candidates: candidates.iter().map(|c| key_of(c)).collect(),
            listed: Listed::default(),
            open: None,
            total: 0,
        }
    }

    fn block(&self) -> u64 {
        self.space.as_ref().map_or(4096, |g| g.block())
    }

    fn ahead(&self, needed: u64) -> Result<(), BundleError> {
        match &self.space {
            Some(g) => g.ahead(needed).map_err(|s| self.no_space("", s)),
            None => Ok(()),
        }
    }

    fn no_space(&self, entry: &str, space: space::NoSpace) -> BundleError {
        BundleError::NoSpace {
            bundle: self.bundle.clone(),
            entry: entry.to_string(),
            space: Box::new(space),
        }
    }

    /// Stands in for the archive dir in messages: nothing is written anywhere.
    fn nowhere() -> PathBuf {
        PathBuf::from("(nothing written: validate only lists the bundle)")
    }

    fn refuse(&self, entry: &str, reason: Unsafe) -> BundleError {
        BundleError::Refused {
            bundle: self.bundle.clone(),
            entry: entry.to_string(),
            reason,
            archive_dir: Self::nowhere(),
        }
    }

    fn conflict(&self, entry: &str, existing: &'static str) -> BundleError {
        BundleError::Conflict {
            bundle: self.bundle.clone(),
            entry: entry.to_string(),
            existing,
        }
    }

    fn malformed(&self, entry: &str, detail: String) -> BundleError {
        BundleError::Malformed {
            bundle: self.bundle.clone(),
            entry: entry.to_string(),
            detail,
        }
    }

    fn count_space(&self, n: u64, entry: &str) -> Result<(), BundleError> {
        match &self.space {
            Some(g) => g.wrote(n).map_err(|s| self.no_space(entry, s)),
            None => Ok(()),
        }
    }

    /// The writer's walk into `dirs`: missing directories are made, a link or a file on the
    /// way is refused.
    fn enter(&mut self, dirs: &[OsString], entry: &str) -> Result<(), BundleError> {
        self.walk(dirs, entry, true)
    }

    /// The writer's walk through existing directories (hard-link targets).
    fn walk_existing(&mut self, dirs: &[OsString], entry: &str) -> Result<(), BundleError> {
        self.walk(dirs, entry, false)
    }

    fn walk(&mut self, dirs: &[OsString], entry: &str, make: bool) -> Result<(), BundleError> {
        for i in 1..=dirs.len() {
            match self.listed.entries.get(&dirs[..i]) {
                Some(Node::Dir) => {}
                Some(Node::Symlink { .. }) => {
                    return Err(self.refuse(
                        entry,
                        Unsafe::ThroughSymlink {
                            component: joined(&dirs[..i]),
                        },
                    ))
                }
                Some(Node::File { .. }) => {
                    return Err(self.conflict(entry, "non-directory on its path"))
                }
                None if make => {
                    self.listed.entries.insert(dirs[..i].to_vec(), Node::Dir);
                }
                None => {
                    return Err(
                        self.malformed(entry, format!("{} does not exist", joined(&dirs[..i])))
                    )
                }
            }
        }
        Ok(())
    }

    /// A new non-directory at `key`: an earlier file or link there is replaced, a directory
    /// is not.
    fn place(&mut self, key: Vec<OsString>, node: Node, entry: &str) -> Result<(), BundleError> {
        if self.listed.entries.get(&key) == Some(&Node::Dir) {
            return Err(self.conflict(entry, "directory"));
        }
        self.listed.texts.remove(&key);
        self.listed.entries.insert(key, node);
        Ok(())
    }

    /// Whether `key` may be the appspec: a candidate name at the top or under one directory
    /// (the strip rule is known only at the end).
    fn is_candidate(&self, key: &[OsString]) -> bool {
        self.candidates
            .iter()
            .any(|c| !c.is_empty() && (key == c.as_slice() || key.get(1..) == Some(c.as_slice())))
    }

    fn hard_link(&mut self, path: &RelPath, target: &[u8], entry: &str) -> Result<(), BundleError> {
        let tpath = match hard_link_target(path, target) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(()),
            Err(why) => return Err(self.refuse(entry, why)),
        };
        self.walk_existing(tpath.parent(), entry)?;
        self.enter(path.parent(), entry)?;
        let tkey = tpath.components().to_vec();
        let node = match self.listed.entries.get(&tkey) {
            Some(Node::Dir) => return Err(self.write_err(entry, libc::EPERM)),
            Some(n) => n.clone(),
            None => return Err(self.write_err(entry, libc::ENOENT)),
        };
        let text = self.listed.texts.get(&tkey).cloned();
        let key = path.components().to_vec();
        self.place(key.clone(), node, entry)?;
        if let Some(t) = text.filter(|_| self.is_candidate(&key)) {
            self.listed.texts.insert(key, t);
        }
        Ok(())
    }

    fn write_err(&self, entry: &str, errno: i32) -> BundleError {
        BundleError::Write {
            bundle: self.bundle.clone(),
            entry: entry.to_string(),
            archive_dir: Self::nowhere(),
            source: io::Error::from_raw_os_error(errno),
        }
    }

    /// The strip rule applied to the listing (archives only), then the result.
    fn finish(mut self, archive: bool) -> Listed {
        self.listed.bytes = self.total;
        if !archive {
            return self.listed;
        }
        let top: Vec<(String, bool)> = self
            .listed
            .entries
            .iter()
            .filter(|(k, _)| k.len() == 1)
            .map(|(k, n)| (k[0].to_string_lossy().into_owned(), *n == Node::Dir))
            .collect();
        let [(only, true)] = top.as_slice() else {
            return self.listed;
        };
        let inner: Vec<String> = self
            .listed
            .entries
            .keys()
            .filter(|k| k.len() == 2)
            .map(|k| k[1].to_string_lossy().into_owned())
            .collect();
        if !strip::should_strip(&top, &inner) {
            return self.listed;
        }
        let only = only.clone();
        self.listed.entries = under_top(std::mem::take(&mut self.listed.entries));
        self.listed.texts = under_top(std::mem::take(&mut self.listed.texts));
        self.listed.stripped_top_level = Some(only);
        self.listed
    }
}

/// The entries below the lone top-level directory, renamed without it.
fn under_top<V>(m: BTreeMap<Vec<OsString>, V>) -> BTreeMap<Vec<OsString>, V> {
    m.into_iter()
        .filter(|(k, _)| k.len() > 1)
        .map(|(k, v)| (k[1..].to_vec(), v))
        .collect()
}

fn joined(parts: &[OsString]) -> String {
    let v: Vec<&[u8]> = parts.iter().map(|c| c.as_bytes()).collect();
    shown(&v.join(&b'/'))
}

impl Sink for Listing {
    fn begin(&mut self, head: EntryHead) -> Result<(), BundleError> {
        self.end()?;
        let shown_name = shown(&head.raw_name);
        let entry = shown_name.as_str();
        if let Kind::Special(what) = head.kind {
            return Err(self.refuse(entry, Unsafe::Special(what)));
        }
        self.count_space(self.block(), entry)?;
        let path = match normalize(&head.raw_name) {
            Err(reason) => return Err(self.refuse(entry, reason)),
            Ok(None) if head.kind == Kind::Dir => return Ok(()),
            Ok(None) => {
                return Err(self.malformed(
                    entry,
                    "a non-directory member names the archive dir itself".into(),
                ))
            }
            Ok(Some(p)) => p,
        };
        match &head.kind {
            Kind::Special(_) => {}
            Kind::Dir => self.enter(path.components(), entry)?,
            Kind::File => {
                let mode = head.mode.unwrap_or(0);
                if self.opts.reject_setuid && mode & 0o6000 != 0 {
                    return Err(self.refuse(entry, Unsafe::Setuid { mode }));
                }
                self.enter(path.parent(), entry)?;
                let key = path.components().to_vec();
                self.place(key.clone(), Node::File { mode: head.mode }, entry)?;
                let keep = self.is_candidate(&key);
                if keep {
                    self.listed.texts.insert(key.clone(), (Vec::new(), 0));
                }
                self.open = Some((key, keep, entry.to_string()));
            }
            Kind::Symlink { target } => {
                self.enter(path.parent(), entry)?;
                let node = Node::Symlink {
                    target: target.clone(),
                };
                self.place(path.components().to_vec(), node, entry)?;
            }
            Kind::HardLink { target } => self.hard_link(&path, target, entry)?,
        }
        Ok(())
    }

    fn data(&mut self, buf: &[u8]) -> Result<(), BundleError> {
        self.skipped(buf.len() as u64)?;
        let Some((key, keep, _)) = &self.open else {
            return Ok(());
        };
        let n = buf.len() as u64;
        if *keep {
            if let Some((bytes, len)) = self.listed.texts.get_mut(key) {
                *len += n;
                let room = (MAX_APPSPEC_BYTES + 1).saturating_sub(bytes.len() as u64);
                let take = usize::try_from(room.min(n)).unwrap_or(0);
                bytes.extend_from_slice(&buf[..take]);
            }
        }
        Ok(())
    }

    fn end(&mut self) -> Result<(), BundleError> {
        self.open = None;
        Ok(())
    }

    /// Counts content bytes as the writer counts them, before they would be written.
    fn skipped(&mut self, n: u64) -> Result<(), BundleError> {
        let Some((_, _, entry)) = &self.open else {
            return Ok(());
        };
        self.total = self.total.saturating_add(n);
        if self.total > self.opts.max_total_bytes {
            return Err(BundleError::TooLarge {
                bundle: self.bundle.clone(),
                entry: entry.clone(),
                limit: self.opts.max_total_bytes,
                archive_dir: Self::nowhere(),
            });
        }
        if let Some(g) = &self.space {
            g.wrote(n).map_err(|s| self.no_space(entry, s))?;
        }
        Ok(())
    }

    fn data_from_file(&mut self, src: &mut File, _len: u64) -> Result<(), BundleError> {
        let mut buf = vec![0u8; pipeline::CHUNK];
        loop {
            let n = match src.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(BundleError::Read {
                        bundle: self.bundle.clone(),
                        entry: self.open.as_ref().map(|o| o.2.clone()).unwrap_or_default(),
                        source: e,
                    })
                }
            };
            self.data(&buf[..n])?;
        }
    }

    /// Only the appspec candidates are read; other files are counted by their size.
    fn wants_data(&self) -> bool {
        self.open.as_ref().is_some_and(|o| o.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = ::tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut h = ::tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn opts() -> UnpackOptions {
        UnpackOptions {
            max_total_bytes: u64::MAX,
            reject_setuid: false,
            restore_ownership: false,
            reserve: None,
        }
    }

    #[test]
    fn strips_a_lone_top_directory_and_keeps_only_candidates() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("b.tar");
        std::fs::write(
            &p,
            tar_of(&[
                ("top/appspec.yml", b"version: 0.0\n"),
                ("top/app/x", b"content"),
            ]),
        )
        .unwrap();
        let l = list_bundle(&p, &opts(), None, &["appspec.yml"]).unwrap();
        assert_eq!(l.stripped_top_level.as_deref(), Some("top"));
        assert_eq!(l.node("app"), Some(&Node::Dir));
        assert!(matches!(l.node("app/x"), Some(Node::File { .. })));
        assert_eq!(l.node("top"), None);
        assert_eq!(l.text("appspec.yml").unwrap().0, b"version: 0.0\n");
        assert_eq!(l.texts.len(), 1, "only candidates are kept");
        assert_eq!(l.bytes, 20);
    }

    #[test]
    fn an_oversized_candidate_keeps_its_size_not_its_bytes() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("b.tar");
        let big = vec![b'#'; (MAX_APPSPEC_BYTES + 100) as usize];
        std::fs::write(&p, tar_of(&[("appspec.yml", &big)])).unwrap();
        let l = list_bundle(&p, &opts(), None, &["appspec.yml"]).unwrap();
        let (bytes, len) = l.text("appspec.yml").unwrap();
        assert_eq!(*len, MAX_APPSPEC_BYTES + 100);
        assert_eq!(bytes.len() as u64, MAX_APPSPEC_BYTES + 1);
    }

    #[test]
    fn a_later_member_replaces_a_file_and_a_link_is_never_walked_through() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("b.tar");
        let mut b = ::tar::Builder::new(Vec::new());
        let mut h = ::tar::Header::new_gnu();
        h.set_entry_type(::tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "appspec.yml", "elsewhere").unwrap();
        let mut h = ::tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "appspec.yml", &b"ok"[..]).unwrap();
        std::fs::write(&p, b.into_inner().unwrap()).unwrap();
        let l = list_bundle(&p, &opts(), None, &["appspec.yml"]).unwrap();
        assert!(matches!(l.node("appspec.yml"), Some(Node::File { .. })));
        assert_eq!(l.text("appspec.yml").unwrap().0, b"ok");

        std::fs::write(&p, tar_of(&[("d", b"a file"), ("d/inside", b"x")])).unwrap();
        let e = list_bundle(&p, &opts(), None, &[]).unwrap_err();
        assert!(matches!(e, BundleError::Conflict { .. }), "{e}");
    }
}

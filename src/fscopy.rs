//! File-content copying shared by the directory-bundle unpacker and the install: as few
//! system calls per file as the kernel allows, since a revision is often thousands of small
//! files.
//!
//! Invariants: both functions read from the file's current position to its end (or to
//! `limit`), never past what the caller allowed, and report exactly what they copied.
//! [`LastDir`] hands out only what its `open` made for exactly the directory asked.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One open directory (or what was made from it), kept while consecutive paths share it:
/// copies meet files a directory at a time, so opening each file's directory once per run of
/// its files saves a walk of the whole path per file.
pub struct LastDir<T> {
    last: Option<(PathBuf, T)>,
}

impl<T> Default for LastDir<T> {
    fn default() -> Self {
        Self { last: None }
    }
}

impl<T> LastDir<T> {
    /// What `open` made for `dir`: kept from the last call if that was for `dir`, else made
    /// now (replacing it).
    pub fn get_or_open<E>(
        &mut self,
        dir: &Path,
        open: impl FnOnce(&Path) -> Result<T, E>,
    ) -> Result<&T, E> {
        let entry = match self.last.take() {
            Some((p, v)) if p.as_os_str() == dir.as_os_str() => (p, v),
            _ => (dir.to_path_buf(), open(dir)?),
        };
        Ok(&self.last.insert(entry).1)
    }
}

/// A handle on the directory at `dir` for `*at` calls only (`O_PATH`: nothing is read from it;
/// a link on the way is followed, as a call by the whole path would).
pub fn open_dir_path(dir: &Path) -> io::Result<std::os::fd::OwnedFd> {
    use nix::fcntl::OFlag;
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    Ok(nix::fcntl::open(dir, flags, nix::sys::stat::Mode::empty())?)
}

/// Threads that copy files: the CPUs available, at most 4 (creating files is bound by the
/// file system beyond that). `CODEDEPLOY_COPY_THREADS` overrides it (a benchmarking knob).
pub fn copy_threads() -> usize {
    std::env::var("CODEDEPLOY_COPY_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 4)
}

/// Reads `from` to its end into `buf` (cleared first). `expect` is the size `fstat` gave:
/// a regular file returns less than asked only at its end, so asking for `expect + 1` bytes
/// normally takes one read; a file that grew since is read on to its end.
pub fn read_whole(from: &mut File, expect: usize, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.clear();
    buf.resize(expect.saturating_add(1), 0);
    let mut got = 0;
    loop {
        let n = match from.read(&mut buf[got..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                buf.clear();
                return Err(e);
            }
        };
        got += n;
        if n == 0 || got == expect {
            break;
        }
        if got == buf.len() {
            buf.resize(buf.len().saturating_mul(2), 0);
        }
    }
    buf.truncate(got);
    Ok(())
}

/// Copies from `from` to `to`, both at their positions, until `from` ends or `limit` bytes
/// were copied, with `copy_file_range` so the bytes stay in the kernel; where the file
/// systems cannot do that it falls back to an ordinary copy. Returns the bytes copied.
pub fn copy_range(from: &mut File, to: &mut File, limit: u64) -> io::Result<u64> {
    let mut done: u64 = 0;
    while done < limit {
        let want = usize::try_from((limit - done).min(1 << 30)).unwrap_or(1 << 30);
        // No offsets: the files' own positions are used and advanced.
        match nix::fcntl::copy_file_range(&*from, None, &*to, None, want) {
            Ok(0) => break,
            Ok(n) => done += n as u64,
            Err(nix::errno::Errno::EINTR) => {}
            // Nothing was copied by the failing call; go on from the positions.
            Err(
                nix::errno::Errno::EXDEV
                | nix::errno::Errno::ENOSYS
                | nix::errno::Errno::EINVAL
                | nix::errno::Errno::EOPNOTSUPP,
            ) => {
                return Ok(done + copy_plain(from, to, limit - done)?);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}

fn copy_plain(from: &mut File, to: &mut File, limit: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut done = 0u64;
    while done < limit {
        let want = usize::try_from((limit - done).min(buf.len() as u64)).unwrap_or(buf.len());
        let n = match from.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
        done += n as u64;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Seek;

    fn file_with(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f.rewind().unwrap();
        f
    }

    #[test]
    fn last_dir_opens_once_per_run_of_one_directory() {
        let mut opened = Vec::new();
        let mut last = LastDir::default();
        for d in ["/a", "/a", "/b", "/a"] {
            let got = last
                .get_or_open(Path::new(d), |p| {
                    opened.push(p.to_path_buf());
                    Ok::<_, io::Error>(format!("{}!", p.display()))
                })
                .unwrap();
            assert_eq!(got, &format!("{d}!"));
        }
        assert_eq!(opened, ["/a", "/b", "/a"].map(PathBuf::from));
        let failed = last.get_or_open(Path::new("/c"), |_| Err("no"));
        assert_eq!(failed, Err("no"));
        // A failed open keeps nothing: the next call opens again.
        let again = last.get_or_open(Path::new("/a"), |_| Ok::<_, &str>("new".to_string()));
        assert_eq!(again.unwrap(), "new");
    }

    #[test]
    fn read_whole_takes_the_file_whatever_the_hint() {
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let mut buf = Vec::new();
        for hint in [0, 10, 4999, 5000, 5001, 100_000] {
            let mut f = file_with(&data);
            read_whole(&mut f, hint, &mut buf).unwrap();
            assert_eq!(buf, data, "hint {hint}");
        }
        read_whole(&mut file_with(b""), 0, &mut buf).unwrap();
        assert!(buf.is_empty());
    }

    #[test]
    fn copy_range_stops_at_the_end_or_the_limit() {
        let data = vec![7u8; 3 << 20];
        let mut to = tempfile::tempfile().unwrap();
        assert_eq!(
            copy_range(&mut file_with(&data), &mut to, u64::MAX).unwrap(),
            data.len() as u64
        );
        to.rewind().unwrap();
        let mut back = Vec::new();
        to.read_to_end(&mut back).unwrap();
        assert_eq!(back, data);

        let mut to = tempfile::tempfile().unwrap();
        assert_eq!(
            copy_range(&mut file_with(&data), &mut to, 1000).unwrap(),
            1000
        );
        assert_eq!(to.metadata().unwrap().len(), 1000);
        assert_eq!(
            copy_plain(&mut file_with(&data), &mut to, 10).unwrap(),
            10,
            "the fallback honours the limit too"
        );
    }
}

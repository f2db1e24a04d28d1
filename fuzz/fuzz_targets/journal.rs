//! A `<group>-cleanup` journal as the next install reads it (core's `plan::journal`, read where
//! it lies and indexed by parent directory): the removals are the journal's lines, last first,
//! as a plain split would give them, and every path among them is found by a lookup, whether
//! the index stays in memory or goes to a spill.
#![no_main]

use codedeploy_agent::plan::{Previous, PreviousInstall, Removal, Spill, SpillSource};
use libfuzzer_sys::fuzz_target;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone)]
struct MemSpill(Arc<Mutex<Vec<u8>>>);

impl Spill for MemSpill {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.lock().map_err(|_| io::ErrorKind::Other)?.extend_from_slice(bytes);
        Ok(())
    }
    fn write_at(&mut self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let mut v = self.0.lock().map_err(|_| io::ErrorKind::Other)?;
        let end = offset as usize + bytes.len();
        if v.len() < end {
            v.resize(end, 0);
        }
        v[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let v = self.0.lock().map_err(|_| io::ErrorKind::Other)?;
        let from = (offset as usize).min(v.len());
        let n = buf.len().min(v.len() - from);
        buf[..n].copy_from_slice(&v[from..from + n]);
        Ok(n)
    }
}

#[derive(Debug)]
struct Spills;

impl SpillSource for Spills {
    fn open(&self) -> io::Result<Box<dyn Spill>> {
        Ok(Box::new(MemSpill::default()))
    }
}

/// The journal's meaning computed the plain way.
fn model(text: &[u8]) -> (Vec<Removal>, Vec<PathBuf>) {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    lines.pop(); // after the last '\n': torn or empty
    let (mut removals, mut paths) = (Vec::new(), Vec::new());
    for l in lines {
        let (context, p) = match l.strip_prefix(b"semanage\0") {
            Some(rest) => (true, rest),
            None => (false, l),
        };
        if p.first() != Some(&b'/') {
            continue;
        }
        let p = Path::new(OsStr::from_bytes(p)).to_path_buf();
        if context {
            removals.push(Removal::SeContext(p));
        } else {
            paths.push(p.clone());
            removals.push(Removal::Path(p));
        }
    }
    removals.reverse();
    (removals, paths)
}

fuzz_target!(init: fuzz_support::init(), |data: &[u8]| {
    // The first byte picks the index's home: odd, a spill whatever the journal's size.
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = rest.to_vec();
    let (removals, paths) = model(&text);
    let j = if pick % 2 == 1 {
        PreviousInstall::open_spilling_past(Box::new(text), &Spills, 0)
    } else {
        PreviousInstall::open(Box::new(text), Some(&Spills))
    }
    .expect("memory reads");
    let got: Vec<Removal> = j.removals().map(|r| r.expect("memory reads")).collect();
    assert_eq!(got, removals);
    assert_eq!(j.len(), removals.len());
    for p in paths.iter().take(64) {
        assert!(j.installed(p).expect("memory reads"), "{p:?}");
    }
});

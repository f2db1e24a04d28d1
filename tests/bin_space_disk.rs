//! Free space, against the built binary (`deploy-local`) on small tmpfs file systems: a
//! bomb and a plain too-big bundle refused with the numbers and leaving nothing behind, an
//! install that would not fit refused before the previous revision is touched, an install
//! that fails part-way (out of inodes) undone with the previous revision put back, and in
//! every case the next deployment succeeds without clean-up by hand.
//!
//! Needs root to mount tmpfs; skips with a message elsewhere.

#[path = "support/common.rs"]
mod common;
#[path = "support/mount.rs"]
mod mount_support;

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{text, BIN};
use mount_support::{tmpfs_or_skip, Tmpfs};

const MIB: u64 = 1024 * 1024;

/// A deployment root (and log dir) at `root`, with `reserve` as free_space_reserve.
struct Agent {
    tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Agent {
    fn new(root: &Path, reserve: &str) -> Self {
        Self::with(root, reserve, "")
    }

    /// [`Agent::new`] with `more` configuration lines.
    fn with(root: &Path, reserve: &str, more: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(
            tmp.path().join("agent.yml"),
            format!(
                "root_dir: {}\nlog_dir: {}\nfree_space_reserve: {reserve}\n{more}",
                root.display(),
                tmp.path().join("log").display()
            ),
        )
        .unwrap();
        Self {
            tmp,
            root: root.to_path_buf(),
        }
    }

    fn deploy(&self, bundle: &Path, kind: &str) -> Output {
        Command::new(BIN)
            .arg("deploy-local")
            .arg("-c")
            .arg(self.tmp.path().join("agent.yml"))
            .args(["-g", "g", "-t", kind, "-b", "OVERWRITE", "-l"])
            .arg(bundle)
            .output()
            .unwrap()
    }

    /// Deployment directories of group g, and what each holds.
    fn deployments(&self) -> Vec<(String, Vec<String>)> {
        let g = self.root.join("g");
        let Ok(rd) = fs::read_dir(&g) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<String>)> = rd
            .flatten()
            .map(|e| {
                let mut inside: Vec<String> = fs::read_dir(e.path())
                    .map(|r| {
                        r.flatten()
                            .map(|x| x.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                inside.sort();
                (e.file_name().to_string_lossy().into_owned(), inside)
            })
            .collect();
        out.sort();
        out
    }
}

fn appspec(dest: &Path) -> String {
    format!(
        "version: 0.0\nos: linux\nfiles:\n  - source: app\n    destination: {}\n",
        dest.display()
    )
}

/// A directory bundle: the appspec and `app/` with `files` (name, content).
fn dir_bundle(at: &Path, dest: &Path, files: &[(&str, Vec<u8>)]) -> PathBuf {
    fs::create_dir_all(at.join("app")).unwrap();
    fs::write(at.join("appspec.yml"), appspec(dest)).unwrap();
    for (name, data) in files {
        fs::write(at.join("app").join(name), data).unwrap();
    }
    at.to_path_buf()
}

/// A tgz holding the appspec and `app/bomb`: `size` zero bytes, compressed as they stream.
fn tgz_bomb(path: &Path, dest: &Path, size: u64) {
    let gz = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(path).unwrap()),
        flate2::Compression::default(),
    );
    let mut b = tar::Builder::new(gz);
    append(&mut b, "appspec.yml", appspec(dest).as_bytes());
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    b.append_data(&mut h, "app/bomb", io::repeat(0).take(size))
        .unwrap();
    b.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

fn append<W: Write>(b: &mut tar::Builder<W>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, name, data).unwrap();
}

/// A zip holding the appspec and `app/bomb` of `size` zero bytes, deflated.
fn zip_bomb(path: &Path, dest: &Path, size: u64) {
    let mut z = zip::ZipWriter::new(File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(size > u32::MAX as u64);
    z.start_file("appspec.yml", opts).unwrap();
    z.write_all(appspec(dest).as_bytes()).unwrap();
    z.start_file("app/bomb", opts).unwrap();
    io::copy(&mut io::repeat(0).take(size), &mut z).unwrap();
    z.finish().unwrap();
}

/// The refusal names the numbers and the file system.
fn assert_no_space(out: &Output, mount: &Path) {
    let all = text(out);
    assert!(!out.status.success(), "{all}");
    for part in [
        "not enough disk space on",
        "needed at least",
        "free ",
        "reserve ",
        "free_space_reserve",
    ] {
        assert!(all.contains(part), "missing {part:?}:\n{all}");
    }
    let mount = mount.canonicalize().unwrap();
    assert!(
        all.contains(&format!("mounted at {})", mount.display())),
        "mount point {} not named:\n{all}",
        mount.display()
    );
}

/// Nothing of a failed DownloadBundle is left: no archive dir, no bundle.tar, no temp dir.
fn assert_nothing_left(agent: &Agent, fs_: &Tmpfs) {
    for (d, inside) in agent.deployments() {
        assert!(
            !inside
                .iter()
                .any(|n| n.starts_with("deployment-archive") || n == "bundle.tar"),
            "{d} still holds {inside:?}"
        );
    }
    assert!(fs_.used() < MIB, "{} bytes still used", fs_.used());
}

fn small_bundle(tmp: &Path, dest: &Path, tag: &str) -> PathBuf {
    dir_bundle(
        &tmp.join(format!("small-{tag}")),
        dest,
        &[("v.txt", tag.as_bytes().to_vec())],
    )
}

#[test]
fn bombs_are_stopped_by_the_reserve_and_leave_nothing() {
    let Some(fs_) = tmpfs_or_skip("bombs_are_stopped_by_the_reserve", "size=64m") else {
        return;
    };
    let agent = Agent::new(&fs_.path().join("root"), "4MiB");
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest");
    let tgz = work.path().join("bomb.tgz");
    tgz_bomb(&tgz, &dest, 256 * MIB);
    assert!(fs::metadata(&tgz).unwrap().len() < 2 * MIB);
    let out = agent.deploy(&tgz, "tgz");
    assert_no_space(&out, fs_.path());
    // Stopped while writing the bomb, not before the first member.
    assert!(text(&out).contains("entry \"app/bomb\""), "{}", text(&out));
    assert_nothing_left(&agent, &fs_);

    // A zip bomb with an honest central directory is refused before a byte is written.
    let zip = work.path().join("bomb.zip");
    zip_bomb(&zip, &dest, 256 * MIB);
    let out = agent.deploy(&zip, "zip");
    assert_no_space(&out, fs_.path());
    assert!(!text(&out).contains("entry \"app/bomb\""), "{}", text(&out));
    assert_nothing_left(&agent, &fs_);

    // The next deployment needs no clean-up by hand.
    let ok = agent.deploy(&small_bundle(work.path(), &dest, "after"), "directory");
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(fs::read(dest.join("v.txt")).unwrap(), b"after");
}

#[test]
fn a_plain_bundle_too_big_is_refused_before_writing() {
    let Some(fs_) = tmpfs_or_skip("a_plain_bundle_too_big", "size=64m") else {
        return;
    };
    let agent = Agent::new(&fs_.path().join("root"), "4MiB");
    let work = tempfile::tempdir().unwrap();
    let dest = work.path().join("dest");
    // Uncompressed: its own length tells it cannot fit.
    let tar_path = work.path().join("big.tar");
    {
        let mut b = tar::Builder::new(BufWriter::new(File::create(&tar_path).unwrap()));
        append(&mut b, "appspec.yml", appspec(&dest).as_bytes());
        let mut h = tar::Header::new_gnu();
        h.set_size(150 * MIB);
        h.set_mode(0o644);
        b.append_data(&mut h, "app/big", io::repeat(7).take(150 * MIB))
            .unwrap();
        b.into_inner().unwrap().flush().unwrap();
    }
    let out = agent.deploy(&tar_path, "tar");
    assert_no_space(&out, fs_.path());
    assert!(!text(&out).contains("entry \""), "{}", text(&out));
    assert_nothing_left(&agent, &fs_);

    // A directory bundle is measured before it is copied.
    let big = dir_bundle(
        &work.path().join("bigdir"),
        &dest,
        &[("big", vec![1u8; 80 * MIB as usize])],
    );
    let out = agent.deploy(&big, "directory");
    assert_no_space(&out, fs_.path());
    assert!(!text(&out).contains("entry \""), "{}", text(&out));
    assert_nothing_left(&agent, &fs_);

    let ok = agent.deploy(&small_bundle(work.path(), &dest, "after"), "directory");
    assert!(ok.status.success(), "{}", text(&ok));
}

/// Every file under `dir` with its content.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if e.file_type().unwrap().is_dir() {
            out.push((p.clone(), Vec::new()));
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn an_install_that_would_not_fit_is_refused_before_the_previous_revision_is_touched() {
    let Some(fs_) = tmpfs_or_skip("an_install_that_would_not_fit", "size=32m") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let agent = Agent::new(&work.path().join("root"), "1MiB");
    let dest = fs_.path().join("app");
    let v1 = dir_bundle(
        &work.path().join("v1"),
        &dest,
        &[
            ("v.txt", b"v1".to_vec()),
            ("data.bin", vec![9u8; 2 * MIB as usize]),
        ],
    );
    let out = agent.deploy(&v1, "directory");
    assert!(out.status.success(), "{}", text(&out));
    let before = snapshot(fs_.path());

    let v2 = dir_bundle(
        &work.path().join("v2"),
        &dest,
        &[
            ("v.txt", b"v2".to_vec()),
            ("data.bin", vec![8u8; 40 * MIB as usize]),
        ],
    );
    let out = agent.deploy(&v2, "directory");
    assert_no_space(&out, fs_.path());
    assert!(
        text(&out).contains("refused before anything changed"),
        "{}",
        text(&out)
    );
    assert_eq!(
        snapshot(fs_.path()),
        before,
        "the previous revision changed"
    );

    let v3 = small_bundle(work.path(), &dest, "v3");
    let out = agent.deploy(&v3, "directory");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read(dest.join("v.txt")).unwrap(), b"v3");
    assert!(!dest.join("data.bin").exists());
}

/// With `install_by_hard_link` the live files on the archive's file system are second names
/// of its files: the install needs no room for them where copies would not fit.
#[test]
fn hard_links_need_no_room_where_copies_would_not_fit() {
    let Some(fs_) = tmpfs_or_skip("hard_links_need_no_room", "size=48m") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let dest = fs_.path().join("app");
    let data = vec![7u8; 26 * MIB as usize];
    let bundle = dir_bundle(
        &work.path().join("v1"),
        &dest,
        &[("data.bin", data.clone())],
    );
    // The kept revision takes 26 MiB of 48; a copy of it would take 26 more.
    let root = fs_.path().join("root");
    let out = Agent::new(&root, "1MiB").deploy(&bundle, "directory");
    assert_no_space(&out, fs_.path());
    assert!(
        text(&out).contains("refused before anything changed"),
        "{}",
        text(&out)
    );
    assert!(!dest.exists());
    fs::remove_dir_all(&root).unwrap();

    let links = Agent::with(&root, "1MiB", "install_by_hard_link: true\n");
    let out = links.deploy(&bundle, "directory");
    assert!(out.status.success(), "{}", text(&out));
    let live = fs::metadata(dest.join("data.bin")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(live.nlink(), 2, "a second name of the kept revision's file");
    assert!(fs::read(dest.join("data.bin")).unwrap() == data);
}

#[test]
fn an_install_failing_part_way_is_undone_and_the_previous_revision_put_back() {
    // Bytes are plenty; inodes run out part-way, which no estimate foresees.
    let Some(fs_) = tmpfs_or_skip("an_install_failing_part_way", "size=32m,nr_inodes=40") else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let agent = Agent::new(&work.path().join("root"), "1MiB");
    let dest = fs_.path().join("app");
    let v1_files: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("f{i}.txt"), format!("v1 file {i}").into_bytes()))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = v1_files
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    let v1 = dir_bundle(&work.path().join("v1"), &dest, &refs);
    let out = agent.deploy(&v1, "directory");
    assert!(out.status.success(), "{}", text(&out));
    let before = snapshot(fs_.path());

    let v2_files: Vec<(String, Vec<u8>)> = (0..80)
        .map(|i| (format!("g{i:02}.txt"), b"v2".to_vec()))
        .collect();
    let refs: Vec<(&str, Vec<u8>)> = v2_files
        .iter()
        .map(|(n, d)| (n.as_str(), d.clone()))
        .collect();
    let v2 = dir_bundle(&work.path().join("v2"), &dest, &refs);
    let out = agent.deploy(&v2, "directory");
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("No space left on device"), "{all}");
    assert!(
        all.contains("what it wrote was removed and the previous revision")
            && all.contains("was installed again"),
        "{all}"
    );
    assert_eq!(
        snapshot(fs_.path()),
        before,
        "the previous revision is not as it was"
    );

    let v3 = small_bundle(work.path(), &dest, "v3");
    let out = agent.deploy(&v3, "directory");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(fs::read(dest.join("v.txt")).unwrap(), b"v3");
    assert!(!dest.join("f0.txt").exists());
}

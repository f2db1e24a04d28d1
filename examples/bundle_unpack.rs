//! Bench helper for bundle unpacking (not part of the agent).
//!
//! `bundle_unpack gen <dir>` writes bench.tar, bench.tgz and bench.zip into <dir>: one 200 MiB
//! file plus 10,000 small files in 100 directories.
//! `bundle_unpack unpack <bundle> <tar|tgz|zip|directory> <archive dir>` unpacks one and prints
//! the report, wall time and the process's peak RSS (VmHWM).

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use std::time::Instant;

use codedeploy_agent::bundle::{unpack_file, BundleType, UnpackOptions};

const BIG: u64 = 200 << 20;

/// Compressible but not trivial data: text lines with a counter.
struct Lines(u64, Vec<u8>, usize);
impl Read for Lines {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.2 >= self.1.len() {
            self.1 = format!(
                "line {:012} of the big file, some filler text {:x}\n",
                self.0,
                self.0 * 2654435761 % 1000003
            )
            .into_bytes();
            self.0 += 1;
            self.2 = 0;
        }
        let n = buf.len().min(self.1.len() - self.2);
        buf[..n].copy_from_slice(&self.1[self.2..self.2 + n]);
        self.2 += n;
        Ok(n)
    }
}

fn small(i: usize) -> Vec<u8> {
    format!("small file {i}\n").repeat(1 + i % 60).into_bytes()
}

fn gen(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let tar_path = dir.join("bench.tar");
    {
        let mut b = tar::Builder::new(BufWriter::new(File::create(&tar_path)?));
        let mut h = tar::Header::new_gnu();
        h.set_size(BIG);
        h.set_mode(0o644);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, "app/big.bin", Lines(0, Vec::new(), 0).take(BIG))?;
        for i in 0..10_000 {
            let data = small(i);
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(if i % 7 == 0 { 0o755 } else { 0o644 });
            h.set_mtime(1_600_000_000);
            b.append_data(
                &mut h,
                format!("app/d{:03}/f{i:05}.txt", i % 100),
                &data[..],
            )?;
        }
        b.into_inner()?.flush()?;
    }
    let mut gz = flate2::write::GzEncoder::new(
        BufWriter::new(File::create(dir.join("bench.tgz"))?),
        flate2::Compression::default(),
    );
    io::copy(&mut File::open(&tar_path)?, &mut gz)?;
    gz.finish()?.flush()?;
    let mut z = zip::ZipWriter::new(BufWriter::new(File::create(dir.join("bench.zip"))?));
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(false);
    z.start_file("app/big.bin", o.unix_permissions(0o644))
        .map_err(io::Error::other)?;
    io::copy(&mut Lines(0, Vec::new(), 0).take(BIG), &mut z)?;
    for i in 0..10_000 {
        z.start_file(
            format!("app/d{:03}/f{i:05}.txt", i % 100),
            o.unix_permissions(0o644),
        )
        .map_err(io::Error::other)?;
        z.write_all(&small(i))?;
    }
    z.finish().map_err(io::Error::other)?.flush()?;
    Ok(())
}

fn peak_rss_kib() -> String {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l[6..].trim().to_string())
        })
        .unwrap_or_else(|| "?".into())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("gen") if args.len() == 3 => gen(Path::new(&args[2]))?,
        Some("unpack") if args.len() == 5 => {
            let kind: BundleType = args[3].parse()?;
            let opts = UnpackOptions {
                max_total_bytes: 16 << 30,
                reject_setuid: false,
                restore_ownership: false,
                reserve: None,
            };
            let t = Instant::now();
            let r = unpack_file(Path::new(&args[2]), kind, Path::new(&args[4]), &opts)?;
            let secs = t.elapsed().as_secs_f64();
            println!(
                "{kind}: {} files, {} dirs, {} symlinks, {:.1} MiB in {secs:.2} s ({:.0} MiB/s); peak RSS {}; stripped {:?}",
                r.files,
                r.dirs,
                r.symlinks,
                r.bytes as f64 / 1048576.0,
                r.bytes as f64 / 1048576.0 / secs,
                peak_rss_kib(),
                r.stripped_top_level
            );
        }
        _ => {
            eprintln!("usage: bundle_unpack gen <dir> | bundle_unpack unpack <bundle> <kind> <archive dir>");
            std::process::exit(2);
        }
    }
    Ok(())
}

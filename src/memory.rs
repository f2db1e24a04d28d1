//! Keeps the daemon and deploy-local small. Start-up runs code that the later work never
//! runs again (configuration, identity, TLS set-up); its clean, file-backed pages stay
//! resident until memory pressure evicts them, and count in the process's RSS meanwhile.
//! After start-up they are handed back with MADV_PAGEOUT; whatever is still needed faults back in.
//!
//! The allocator is set up once at start ([`tune_allocator`]) so that freed buffers go back
//! to the kernel instead of staying resident.
//!
//! Invariant: only private, read-only, file-backed mappings are advised (code and constant
//! data, never heap, stack or anything writable), and failure is harmless (older kernels
//! answer EINVAL; the pages simply stay).

/// What glibc keeps free at the top of a heap before handing it back (see
/// [`tune_allocator`]; BENCHMARKS.md, "Allocator trim threshold").
pub const TRIM_THRESHOLD: i32 = 1 << 20;

/// Sets the allocator up for bursts of buffers: a ranged download keeps up to its window in
/// chunks that come and go, and glibc's default (a threshold that rises after large frees)
/// kept several MiB of them resident after they were freed. Called first thing in `main`.
/// An operator's own `MALLOC_TRIM_THRESHOLD_` or `GLIBC_TUNABLES` wins.
pub fn tune_allocator() {
    if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_some()
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    crate::sys::set_malloc_trim_threshold(TRIM_THRESHOLD);
}

/// Asks the kernel to reclaim this process's read-only file-backed pages now.
pub fn release_startup_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms), Some(_offset), Some(_dev), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        if inode == "0" || perms.contains('w') || !perms.ends_with('p') || fields.next().is_none() {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        crate::sys::page_out_mapping(start, end);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paging_out_code_keeps_the_process_working() {
        super::release_startup_pages();
        // Code and constants fault back in: the process carries on normally.
        let v: Vec<u64> = (0..1000).map(|i| i * i).collect();
        assert_eq!(v[999], 998_001);
        assert!(format!("{:?}", std::path::Path::new("/x")).contains("/x"));
    }
}

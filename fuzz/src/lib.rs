//! What every fuzz target shares: an allocation cap, per-input scratch directories for the
//! bundle readers, and the unpack options those readers run with.
//!
//! The targets call the agent library's public functions only; this crate adds no parsing of
//! its own. See FUZZING.md for why each limit has the value it has.

use std::alloc::{GlobalAlloc, Layout, System};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Once, OnceLock};

use codedeploy_agent::bundle::UnpackOptions;

/// The largest single allocation any target may make. libFuzzer without a sanitizer has no
/// malloc limit of its own (its `-malloc_limit_mb` needs sanitizer hooks), so an allocation
/// sized from a header field would only show up once it is touched. No input of at most
/// `-max_len` bytes (256 KiB at most, see run.sh) needs 64 MiB in one piece: a request above
/// this fails, the process aborts with "memory allocation of N bytes failed", and libFuzzer
/// records the input as a crash.
pub const MAX_ALLOC: usize = 64 << 20;

/// Forwards to the system allocator, refusing single allocations above [`MAX_ALLOC`].
pub struct CappedAlloc;

// SAFETY: every call is forwarded unchanged to `System`, or answered with null, which the
// `GlobalAlloc` contract allows for any request.
unsafe impl GlobalAlloc for CappedAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOC {
            return std::ptr::null_mut();
        }
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: CappedAlloc = CappedAlloc;

/// Bytes one fuzzed bundle may unpack to. The agent's fixed limit is the configuration key
/// `archive_max_extraction_size` (unset by default: the free space above
/// `free_space_reserve` is the bound); the targets set the same key lower so
/// that a gzip bomb stops within a few milliseconds of tmpfs writes. The code that enforces
/// it is the agent's own, whatever the value.
pub const MAX_EXTRACTION: u64 = 4 << 20;

/// Unpack options as the agent derives them from its configuration. Whether setuid members
/// are refused alternates with the input length, so both paths of the writer are reached and
/// a given input always takes the same one.
pub fn unpack_options(input: &[u8]) -> UnpackOptions {
    setup();
    UnpackOptions {
        max_total_bytes: MAX_EXTRACTION,
        reject_setuid: input.len() % 2 == 1,
        // The agent restores tar ownership when it runs as root; so do the targets.
        // SAFETY: geteuid has no preconditions and cannot fail.
        restore_ownership: unsafe { libc::geteuid() } == 0,
        // No free-space measuring: the fixed limit above keeps every run small and the same
        // input always takes the same path.
        reserve: None,
    }
}

/// Set-up every target runs once, before libFuzzer installs its signal handlers (the `init:`
/// of `fuzz_target!`).
///
/// A stack overflow must become a finding with its input saved. libFuzzer owns `main`, so
/// Rust's own overflow handler is never installed, and libFuzzer's SIGSEGV handler would run
/// on the overflowed stack and die before writing the input. libFuzzer keeps `SA_ONSTACK`
/// when it finds it on the previous SIGSEGV disposition, so this gives the main thread an
/// alternate signal stack and leaves a default disposition that carries the flag.
pub fn init() {
    const ALT_STACK: usize = 256 * 1024;
    let stack: &'static mut [u8] = Box::leak(vec![0u8; ALT_STACK].into_boxed_slice());
    // SAFETY: the alternate stack is leaked, so it lives as long as the process; the
    // sigaction installs the default handler (no code of ours runs in signal context).
    unsafe {
        let ss = libc::stack_t {
            ss_sp: stack.as_mut_ptr().cast(),
            ss_flags: 0,
            ss_size: ALT_STACK,
        };
        if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
            panic!(
                "harness: sigaltstack failed: {}",
                std::io::Error::last_os_error()
            );
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
        if libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut()) != 0 {
            panic!(
                "harness: sigaction failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// One-time process set-up for the bundle targets: the unpack writer runs on the fuzzing
/// thread (`CODEDEPLOY_BUNDLE_INLINE=1`), so every input takes the same path and coverage is
/// not blurred by thread scheduling. The two-thread hand-off is covered by the test suite.
fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| std::env::set_var("CODEDEPLOY_BUNDLE_INLINE", "1"));
}

/// Where the scratch directories live: `$CD_FUZZ_SCRATCH` (run.sh sets it and removes it
/// afterwards), else a per-process directory in /dev/shm, so extraction never touches a disk.
fn scratch_base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let base = match std::env::var_os("CD_FUZZ_SCRATCH") {
            Some(p) => PathBuf::from(p),
            None => {
                let shm = Path::new("/dev/shm");
                let parent = if shm.is_dir() {
                    shm.to_path_buf()
                } else {
                    std::env::temp_dir()
                };
                parent.join(format!("codedeploy-fuzz-{}", std::process::id()))
            }
        };
        if let Err(e) = fs::create_dir_all(&base) {
            panic!("harness: cannot create scratch dir {}: {e}", base.display());
        }
        base
    })
}

/// A fresh, empty directory for one input, removed when dropped.
pub struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = scratch_base().join(N.fetch_add(1, Ordering::Relaxed).to_string());
        // A crashed earlier run of the same process id may have left this name behind.
        remove_tree(&dir);
        if let Err(e) = fs::create_dir(&dir) {
            panic!("harness: cannot create {}: {e}", dir.display());
        }
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Asserts that the scratch directory holds nothing but (some of) `names`: an unpack into
    /// `<scratch>/archive` must never create anything beside it.
    pub fn assert_nothing_beside(&self, names: &[&str]) {
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) => panic!("harness: cannot list {}: {e}", self.dir.display()),
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            assert!(
                names.contains(&name.as_str()),
                "an unpack wrote {name:?} outside its archive dir"
            );
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_tree(&self.dir);
    }
}

/// Removes a tree an unpack made. Directories without write or search permission (a bundle
/// may ask for mode 000) only stop a non-root user: they are opened up and the removal retried.
fn remove_tree(dir: &Path) {
    if !dir.exists() || fs::remove_dir_all(dir).is_ok() {
        return;
    }
    open_up(dir);
    if let Err(e) = fs::remove_dir_all(dir) {
        eprintln!("harness: cannot remove {}: {e}", dir.display());
    }
}

fn open_up(dir: &Path) {
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                open_up(&e.path());
            }
        }
    }
}

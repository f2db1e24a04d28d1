//! codedeploy-agent: a host agent for AWS CodeDeploy in-place deployments.
//!
//! # The one law
//! Decisions are pure; I/O lives at the edges. The modules marked PURE below take plain data
//! and return plain data: they never touch the disk, the network, the clock or processes, and
//! they are unit-tested as plain functions. They live in the `codedeploy-core` crate (`core/`),
//! which forbids unsafe and has no I/O dependency; this crate re-exports them. Adapters
//! (`state`, `bundle`, `install`, `hooks`, `logging`) do the I/O; the drivers (`local` for `deploy-local`, `agent` for the daemon) call
//! both through `executor`.
//!
//! Dependencies point inward: pure modules use nothing of the crate's I/O.

pub mod agent; // the daemon: identity, crash recovery, poll loop, graceful stop
pub mod appspec; // PURE (codedeploy-core) + locating/reading the appspec file
pub mod bundle; // adapter: safe streaming unpack of tar/tgz/zip/directory bundles
pub mod cli; // command-line surface (clap); `codedeploy-local` by argv[0]
pub mod cmd; // one `run()` per subcommand, and the start-up they share (config, logging)
pub mod config; // codedeployagent.yml (plain and legacy `:key:` forms), on-premises file
pub mod control; // adapter: host-command client (SigV4), endpoint, identity and credentials, signed spec envelope
pub use codedeploy_core::deployspec; // PURE: deployment specification fields
pub use codedeploy_core::diagnostics; // PURE: script outcome -> error code 0..7 and payload; log-tail rule
pub mod executor; // one code path for DownloadBundle, Install and hook events
pub mod failpoint; // test aid: freeze the daemon at a named phase so a test can SIGKILL it there
pub mod fscopy; // file contents copied with few system calls (unpacker and install share it)
pub mod group; // taking a deployment group: its cross-process lock, then a dead holder's leftover hook
pub mod hooks; // adapter: run one hook script (process group/cgroup, timeout, runas, logs)
pub mod install; // adapter: apply an install plan (copy, mkdir, modes, owners, ACLs, SELinux)
pub use codedeploy_core::lifecycle; // PURE: the one Event list, order, which revision runs which event
pub mod links; // PURE (codedeploy-core): where a path in a revision leads (+ disk view)
pub mod local; // the local deployment driver (`deploy-local`)
pub mod logging; // tracing setup: stderr for tools; journald or a rotated file for the daemon
pub mod logs; // `logs`: hook output of every deployment in time order, optionally followed
pub mod memory; // after start-up, hand read-only code pages back to the kernel (idle RSS)
pub use codedeploy_core::names; // PURE: names are bytes; the one round-tripping escaping for text
pub mod notify; // sd_notify: READY, STATUS, STOPPING, WATCHDOG over $NOTIFY_SOCKET
pub use codedeploy_core::plan; // PURE: install plan, cleanup journal parsing, retention of old revisions
pub mod proxy; // which proxy each HTTP client uses (PURE choice) and the 407 error
pub mod random; // the one source of randomness: retry spreads, poll spread, local ids
pub mod space; // free space: the reserve rule (PURE) and statvfs checks before and while writing
pub mod state; // adapter: deployment-root layout, pointer files, atomic writes
pub mod status; // status file, `status` command, systemd STATUS= line, .version file
pub mod sys; // the one home of `unsafe`: safe wrappers over localtime_r, mktime, waitid, madvise, pre_exec
pub mod transfer; // adapter: S3 and GitHub bundle downloads streamed into the unpacker
pub mod validate; // `validate`: bundle -> summary or every problem found

/// The agent's version, as `--version` prints it and the service receives it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

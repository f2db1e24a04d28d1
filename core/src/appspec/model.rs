//! The validated AppSpec as plain data. Everything here has passed validation: a value of
//! these types is always something the install planner and the hook runner can act on.

use std::collections::BTreeSet;
use std::fmt;

/// A place in the AppSpec file, 1-based, for error messages and summaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Windows,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileExistsBehavior {
    Disallow,
    Overwrite,
    Retain,
}

impl FileExistsBehavior {
    /// Parses the exact upper-case spelling the service and the appspec use.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "DISALLOW" => Some(Self::Disallow),
            "OVERWRITE" => Some(Self::Overwrite),
            "RETAIN" => Some(Self::Retain),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disallow => "DISALLOW",
            Self::Overwrite => "OVERWRITE",
            Self::Retain => "RETAIN",
        }
    }
}

/// One `files` entry: `source` is relative to the bundle root, `destination` absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMapping {
    pub source: String,
    pub destination: String,
    pub pos: Pos,
}

/// One script of a hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// As written, stripped; always relative to the revision's archive directory.
    pub location: String,
    /// Seconds; 3600 when absent.
    pub timeout_secs: u32,
    pub runas: Option<String>,
    /// The undocumented `sudo` key: kept so a summary can show it.
    pub sudo: bool,
    pub pos: Pos,
}

pub const DEFAULT_SCRIPT_TIMEOUT_SECS: u32 = 3600;

/// Hooks in appspec order: event name -> scripts (possibly empty, which is a noop).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hooks(pub Vec<(String, Vec<Script>)>);

impl Hooks {
    /// The scripts of an event; `None` when the event is not in the appspec.
    pub fn get(&self, event: &str) -> Option<&[Script]> {
        self.0
            .iter()
            .find(|(name, _)| name == event)
            .map(|(_, scripts)| scripts.as_slice())
    }
    pub fn events(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(name, _)| name.as_str())
    }
}

/// Which kinds of objects a permission applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectTypes {
    pub file: bool,
    pub directory: bool,
}

impl Default for ObjectTypes {
    fn default() -> Self {
        Self {
            file: true,
            directory: true,
        }
    }
}

/// A file mode from the appspec: permission bits plus setuid/setgid/sticky.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub u32);

impl Mode {
    pub fn bits(self) -> u32 {
        self.0
    }
    pub fn setuid(self) -> bool {
        self.0 & 0o4000 != 0
    }
    pub fn setgid(self) -> bool {
        self.0 & 0o2000 != 0
    }
    pub fn sticky(self) -> bool {
        self.0 & 0o1000 != 0
    }
}

impl fmt::Display for Mode {
    /// Three octal digits, or four when a special bit is set (`644`, `4755`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0o777 {
            write!(f, "{:04o}", self.0)
        } else {
            write!(f, "{:03o}", self.0)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AceKind {
    User,
    Group,
    Mask,
    Other,
}

/// One ACL entry in setfacl terms. `name` is empty for mask, other and base entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ace {
    pub default: bool,
    pub kind: AceKind,
    pub name: String,
    /// rwx as bits 4/2/1.
    pub perms: u8,
}

impl fmt::Display for Ace {
    /// Canonical setfacl rendering: `[default:]user:bob:rwx`, `mask::---`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.default {
            f.write_str("default:")?;
        }
        let kind = match self.kind {
            AceKind::User => "user",
            AceKind::Group => "group",
            AceKind::Mask => "mask",
            AceKind::Other => "other",
        };
        let bit = |b: u8, c: char| if self.perms & b != 0 { c } else { '-' };
        write!(
            f,
            "{kind}:{}:{}{}{}",
            self.name,
            bit(4, 'r'),
            bit(2, 'w'),
            bit(1, 'x')
        )
    }
}

/// An SELinux MLS range `s<low>[-s<high>][:categories]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeRange {
    pub low: u32,
    pub high: u32,
    pub categories: BTreeSet<u16>,
}

impl fmt::Display for SeRange {
    /// Canonical form: consecutive categories merged, `s0-s3:c0.c2,c7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.low)?;
        if self.high != self.low {
            write!(f, "-s{}", self.high)?;
        }
        let cats: Vec<u16> = self.categories.iter().copied().collect();
        let mut i = 0;
        let mut first = true;
        while i < cats.len() {
            let mut j = i;
            while j + 1 < cats.len() && cats[j + 1] == cats[j] + 1 {
                j += 1;
            }
            f.write_str(if first { ":" } else { "," })?;
            first = false;
            if j > i {
                write!(f, "c{}.c{}", cats[i], cats[j])?;
            } else {
                write!(f, "c{}", cats[i])?;
            }
            i = j + 1;
        }
        Ok(())
    }
}

/// SELinux context for `semanage fcontext`: the appspec's `name` is the SELinux user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeContext {
    pub user: Option<String>,
    pub type_: String,
    pub range: Option<SeRange>,
}

/// One `permissions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub object: String,
    /// `**` (every descendant) unless given.
    pub pattern: String,
    pub except: Vec<String>,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: Option<Mode>,
    pub acls: Vec<Ace>,
    pub context: Option<SeContext>,
    pub types: ObjectTypes,
    pub pos: Pos,
}

/// A whole validated AppSpec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppSpec {
    pub os: Os,
    pub files: Vec<FileMapping>,
    pub permissions: Vec<Permission>,
    pub hooks: Hooks,
    pub file_exists_behavior: Option<FileExistsBehavior>,
}

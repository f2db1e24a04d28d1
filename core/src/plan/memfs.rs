//! An in-memory [`FsView`] for planner tests.

use super::fsview::{DestKind, FsView, Node as SourceNode};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone)]
enum Node {
    Dir,
    File,
    Link(PathBuf),
    Special,
}

#[derive(Debug, Clone)]
pub(crate) struct MemFs {
    nodes: BTreeMap<PathBuf, Node>,
    /// Every path asked about, as (`dest_kind` or `source_node`, path), in order.
    asked: RefCell<Vec<(&'static str, PathBuf)>>,
}

impl MemFs {
    pub(crate) fn new() -> Self {
        let mut nodes = BTreeMap::new();
        nodes.insert(PathBuf::from("/"), Node::Dir);
        Self {
            nodes,
            asked: RefCell::new(Vec::new()),
        }
    }

    /// The paths `what` (`dest_kind` or `source_node`) was asked about so far.
    pub(crate) fn asked(&self, what: &str) -> Vec<PathBuf> {
        self.asked
            .borrow()
            .iter()
            .filter(|(w, _)| *w == what)
            .map(|(_, p)| p.clone())
            .collect()
    }
    fn put(mut self, p: &str, n: Node) -> Self {
        let p = PathBuf::from(p);
        for a in p.ancestors().skip(1) {
            self.nodes.entry(a.to_path_buf()).or_insert(Node::Dir);
        }
        self.nodes.insert(p, n);
        self
    }
    pub(crate) fn dir(self, p: &str) -> Self {
        self.put(p, Node::Dir)
    }
    pub(crate) fn file(self, p: &str) -> Self {
        self.put(p, Node::File)
    }
    pub(crate) fn link(self, p: &str, target: &str) -> Self {
        self.put(p, Node::Link(target.into()))
    }
    pub(crate) fn special(self, p: &str) -> Self {
        self.put(p, Node::Special)
    }

    fn resolve(&self, p: &Path, follow_last: bool, depth: u32) -> PathBuf {
        let comps: Vec<Component> = p.components().collect();
        let mut cur = PathBuf::from("/");
        for (i, c) in comps.iter().enumerate() {
            if let Component::Normal(n) = c {
                cur.push(n);
                let last = i + 1 == comps.len();
                if let Some(Node::Link(t)) = self.nodes.get(&cur) {
                    if (!last || follow_last) && depth < 16 {
                        cur = self.resolve(t, true, depth + 1);
                    }
                }
            }
        }
        cur
    }
}

impl FsView for MemFs {
    fn dest_kind(&self, path: &Path) -> io::Result<DestKind> {
        self.asked
            .borrow_mut()
            .push(("dest_kind", path.to_path_buf()));
        let r = self.resolve(path, false, 0);
        Ok(match self.nodes.get(&r) {
            None => DestKind::Absent,
            Some(Node::Dir) => DestKind::Dir,
            Some(Node::File) => DestKind::File,
            Some(Node::Special) => DestKind::Special,
            Some(Node::Link(t)) => match self.nodes.get(&self.resolve(t, true, 0)) {
                Some(Node::Dir) => DestKind::SymlinkToDir,
                _ => DestKind::Symlink,
            },
        })
    }
    fn source_node(&self, path: &Path) -> io::Result<SourceNode> {
        self.asked
            .borrow_mut()
            .push(("source_node", path.to_path_buf()));
        // The planner asks only through real directories: no resolution here.
        for a in path.ancestors().skip(1) {
            if let Some(Node::Link(_)) = self.nodes.get(a) {
                panic!(
                    "asked about {} through the link {}",
                    path.display(),
                    a.display()
                );
            }
        }
        Ok(match self.nodes.get(path) {
            None => SourceNode::Missing,
            Some(Node::Dir) => SourceNode::Dir,
            Some(Node::File) => SourceNode::File,
            Some(Node::Special) => SourceNode::Special,
            Some(Node::Link(t)) => SourceNode::Symlink(t.as_os_str().as_bytes().to_vec()),
        })
    }
    fn list_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let r = self.resolve(path, true, 0);
        // Reverse order, so tests show the planner sorts.
        Ok(self
            .nodes
            .keys()
            .rev()
            .filter(|k| k.parent() == Some(r.as_path()))
            .filter_map(|k| k.file_name().map(|n| n.to_os_string()))
            .collect())
    }
    fn list_dir_typed(&self, path: &Path) -> io::Result<Vec<(OsString, Option<SourceNode>)>> {
        let r = self.resolve(path, true, 0);
        let names = self.list_dir(path)?;
        Ok(names
            .into_iter()
            .map(|n| {
                let hint = match self.nodes.get(&r.join(&n)) {
                    Some(Node::Dir) => Some(SourceNode::Dir),
                    Some(Node::File) => Some(SourceNode::File),
                    _ => None,
                };
                (n, hint)
            })
            .collect())
    }
    fn dir_id(&self, path: &Path) -> io::Result<(u64, u64)> {
        let r = self.resolve(path, true, 0);
        let idx = self
            .nodes
            .keys()
            .position(|k| *k == r)
            .unwrap_or(usize::MAX);
        Ok((0, idx as u64))
    }
}

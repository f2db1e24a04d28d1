use super::*;
use std::collections::BTreeMap;
use std::convert::Infallible;

/// A revision in memory: paths (`a/b`) to nodes; parents are directories.
struct Tree(BTreeMap<Vec<u8>, Node>);

impl Tree {
    fn new(entries: &[(&str, Node)]) -> Self {
        let mut m = BTreeMap::new();
        for (p, n) in entries {
            let mut prefix = Vec::new();
            let comps: Vec<&[u8]> = p.as_bytes().split(|&b| b == b'/').collect();
            for c in &comps[..comps.len() - 1] {
                if !prefix.is_empty() {
                    prefix.push(b'/');
                }
                prefix.extend_from_slice(c);
                m.entry(prefix.clone()).or_insert(Node::Dir);
            }
            m.insert(p.as_bytes().to_vec(), n.clone());
        }
        Self(m)
    }

    fn resolve(&self, start: &str, path: &str, follow_last: bool) -> Resolved {
        let start: Rel = parts(start.as_bytes())
            .map(|c| OsString::from_vec(c.to_vec()))
            .collect();
        let mut asked = Vec::new();
        let r = resolve::<Infallible>(&start, path.as_bytes(), follow_last, &mut |rel| {
            let key = show(rel).into_bytes();
            asked.push(key.clone());
            Ok(self.0.get(&key).cloned().unwrap_or(Node::Missing))
        })
        .unwrap();
        // The callback never sees a path through a link.
        for a in &asked {
            let comps: Vec<&[u8]> = a.split(|&b| b == b'/').collect();
            for i in 1..comps.len() {
                let prefix = comps[..i].join(&b'/');
                assert_eq!(
                    self.0.get(&prefix),
                    Some(&Node::Dir),
                    "asked through {prefix:?}"
                );
            }
        }
        r
    }
}

fn link(t: &str) -> Node {
    Node::Symlink(t.as_bytes().to_vec())
}

fn inside(real: &str, node: Node) -> Resolved {
    Resolved::Inside {
        real: parts(real.as_bytes())
            .map(|c| OsString::from_vec(c.to_vec()))
            .collect(),
        node,
    }
}

fn outside(at: &str, target: &str) -> Resolved {
    Resolved::Outside {
        via: Some(Link {
            at: parts(at.as_bytes())
                .map(|c| OsString::from_vec(c.to_vec()))
                .collect(),
            target: target.as_bytes().to_vec(),
        }),
    }
}

fn hostile() -> Tree {
    Tree::new(&[
        ("inner/app.ini", Node::File),
        ("inner/secret", link("/etc/shadow")),
        ("inner/up", link("../..")),
        ("inner/home", link("..")),
        ("conf", link("inner")),
        ("etc", link("/etc")),
        ("chain1", link("chain2")),
        ("chain2", link("chain3")),
        ("chain3", link("etc")),
        ("dotdot", link("inner/../../x")),
        ("via", link("conf/up")),
        ("dangling", link("nowhere")),
        ("empty", link("")),
        ("loop", link("loop")),
        ("self", link(".")),
        ("f", Node::File),
        ("fifo", Node::Special),
    ])
}

#[test]
fn plain_paths_stay_inside() {
    let t = hostile();
    assert_eq!(
        t.resolve("", "inner/app.ini", true),
        inside("inner/app.ini", Node::File)
    );
    assert_eq!(
        t.resolve("", "./inner//app.ini", false),
        inside("inner/app.ini", Node::File)
    );
    assert_eq!(t.resolve("", "/f", true), inside("f", Node::File));
    assert_eq!(t.resolve("", "", true), inside("", Node::Dir));
    assert_eq!(t.resolve("", "fifo", true), inside("fifo", Node::Special));
    assert_eq!(
        t.resolve("", "nothing", true),
        inside("nothing", Node::Missing)
    );
    assert_eq!(t.resolve("", "f/x", true), inside("f", Node::Missing));
}

#[test]
fn links_inside_are_followed_by_their_real_directory() {
    let t = hostile();
    assert_eq!(
        t.resolve("", "conf/app.ini", true),
        inside("inner/app.ini", Node::File)
    );
    assert_eq!(t.resolve("", "conf", true), inside("inner", Node::Dir));
    assert_eq!(t.resolve("", "conf", false), inside("conf", link("inner")));
    // `..` after a link climbs from where the link leads.
    assert_eq!(t.resolve("", "conf/../f", true), inside("f", Node::File));
    assert_eq!(t.resolve("", "inner/home/f", true), inside("f", Node::File));
    assert_eq!(t.resolve("", "self/self/f", true), inside("f", Node::File));
    assert_eq!(
        t.resolve("inner", "app.ini", true),
        inside("inner/app.ini", Node::File)
    );
}

#[test]
fn links_leaving_are_named() {
    let t = hostile();
    assert_eq!(t.resolve("", "etc", true), outside("etc", "/etc"));
    assert_eq!(t.resolve("", "etc/shadow", false), outside("etc", "/etc"));
    assert_eq!(t.resolve("", "chain1/passwd", true), outside("etc", "/etc"));
    assert_eq!(
        t.resolve("", "conf/secret", true),
        outside("inner/secret", "/etc/shadow")
    );
    assert_eq!(t.resolve("", "conf/up", true), outside("inner/up", "../.."));
    assert_eq!(t.resolve("", "via/x", true), outside("inner/up", "../.."));
    assert_eq!(
        t.resolve("", "dotdot", true),
        outside("dotdot", "inner/../../x")
    );
    // The last link is not followed unless asked.
    assert_eq!(
        t.resolve("", "conf/secret", false),
        inside("inner/secret", link("/etc/shadow"))
    );
}

#[test]
fn the_paths_own_dot_dot_leaving_blames_no_link() {
    let t = hostile();
    assert_eq!(t.resolve("", "../x", true), Resolved::Outside { via: None });
    assert_eq!(
        t.resolve("", "inner/../../x", true),
        Resolved::Outside { via: None }
    );
    assert_eq!(
        t.resolve("", "conf/../../x", true),
        Resolved::Outside { via: None }
    );
}

#[test]
fn dangling_empty_and_looping_links() {
    let t = hostile();
    assert_eq!(
        t.resolve("", "dangling", true),
        inside("nowhere", Node::Missing)
    );
    assert_eq!(t.resolve("", "empty", true), inside("empty", Node::Missing));
    assert!(matches!(t.resolve("", "loop", true), Resolved::Loop { .. }));
    assert_eq!(t.resolve("", "loop", false), inside("loop", link("loop")));
}

#[test]
fn descriptions_escape_names() {
    let l = Link {
        at: vec![OsString::from("a"), OsString::from_vec(b"caf\xe9".to_vec())],
        target: b"/etc".to_vec(),
    };
    assert_eq!(l.describe(), "a/caf\\xe9 -> /etc");
    assert_eq!(show(&[]), ".");
}

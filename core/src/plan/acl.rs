//! The full ACL an appspec ACE list stands for (docs/behaviour/install.md#install-execution),
//! computed per object.
//!
//! Invariant: the result depends only on the ACEs and that object's mode. The official agent
//! accumulates derived entries across the objects of one permission entry
//! (docs/behaviour/official-quirks.md#quirk-9); this does not, so every object gets exactly its own
//! ACL.

use crate::appspec::model::{Ace, AceKind};

fn rwx(perms: u32) -> String {
    let bit = |b: u32, c: char| if perms & b != 0 { c } else { '-' };
    format!("{}{}{}", bit(4, 'r'), bit(2, 'w'), bit(1, 'x'))
}

fn is_base(a: &Ace, default: bool, kind: AceKind) -> bool {
    a.default == default && a.kind == kind && a.name.is_empty()
}

fn is_named(a: &Ace, default: bool) -> bool {
    a.default == default && matches!(a.kind, AceKind::User | AceKind::Group) && !a.name.is_empty()
}

/// The ACE strings for `setfacl --set`: the given entries, then base entries from `mode`'s
/// digits, a mask when named entries need one, and the default counterparts when any default
/// entry is given.
pub fn full_acl(aces: &[Ace], mode: u32) -> Vec<String> {
    let (u, g, o) = ((mode >> 6) & 7, (mode >> 3) & 7, mode & 7);
    let mut out: Vec<String> = aces.iter().map(ToString::to_string).collect();
    out.push(format!("user::{}", rwx(u)));
    out.push(format!("group::{}", rwx(g)));
    out.push(format!("other::{}", rwx(o)));
    let has_mask = aces.iter().any(|a| !a.default && a.kind == AceKind::Mask);
    if aces.iter().any(|a| is_named(a, false)) && !has_mask {
        out.push(format!("mask::{}", rwx(g)));
    }
    if aces.iter().any(|a| a.default) {
        let given = |kind: AceKind| aces.iter().find(|a| is_base(a, true, kind));
        for (kind, name, digit) in [
            (AceKind::User, "user", u),
            (AceKind::Group, "group", g),
            (AceKind::Other, "other", o),
        ] {
            if given(kind).is_none() {
                out.push(format!("default:{name}::{}", rwx(digit)));
            }
        }
        let has_default_mask = aces.iter().any(|a| a.default && a.kind == AceKind::Mask);
        if aces.iter().any(|a| is_named(a, true)) && !has_default_mask {
            let group_perms = given(AceKind::Group).map_or(g, |a| u32::from(a.perms));
            out.push(format!("default:mask::{}", rwx(group_perms)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ace(default: bool, kind: AceKind, name: &str, perms: u8) -> Ace {
        Ace {
            default,
            kind,
            name: name.into(),
            perms,
        }
    }

    #[test]
    fn official_example() {
        let aces = [
            ace(false, AceKind::User, "bob", 7),
            ace(true, AceKind::User, "bob", 7),
        ];
        assert_eq!(
            full_acl(&aces, 0o421).join(","),
            "user:bob:rwx,default:user:bob:rwx,user::r--,group::-w-,other::--x,mask::-w-,\
             default:user::r--,default:group::-w-,default:other::--x,default:mask::-w-"
        );
    }

    #[test]
    fn no_accumulation_and_given_mask_kept() {
        let aces = [
            ace(false, AceKind::Group, "dev", 5),
            ace(false, AceKind::Mask, "", 5),
        ];
        let a = full_acl(&aces, 0o640);
        let b = full_acl(&aces, 0o600);
        assert_eq!(
            a.join(","),
            "group:dev:r-x,mask::r-x,user::rw-,group::r--,other::---"
        );
        assert_eq!(
            b.join(","),
            "group:dev:r-x,mask::r-x,user::rw-,group::---,other::---"
        );
    }

    #[test]
    fn given_default_group_feeds_default_mask() {
        let aces = [
            ace(true, AceKind::Group, "", 5),
            ace(true, AceKind::User, "bob", 6),
        ];
        assert_eq!(
            full_acl(&aces, 0o750).join(","),
            "default:group::r-x,default:user:bob:rw-,user::rwx,group::r-x,other::---,\
             default:user::rwx,default:other::---,default:mask::r-x"
        );
    }
}

//! PURE: the `permissions` section -> [`Permission`] values (object, pattern, except, owner,
//! group, mode, acls, SELinux context, object types), recording every problem found.

use super::grammar::{parse_ace, parse_mode, parse_range};
use super::model::{ObjectTypes, Permission, SeContext};
use super::typing::{expect_map, expect_seq, expect_text, join, opt_text, Ctx, Fields};
use super::yaml::Node;

const PERMISSION_KEYS: &[&str] = &[
    "object", "pattern", "except", "owner", "group", "mode", "acls", "context", "type",
];
const CONTEXT_KEYS: &[&str] = &["name", "type", "range"];

pub(crate) fn convert_permissions(ctx: &mut Ctx, node: &Node) -> Vec<Permission> {
    let what = "a list of `- object: …` entries";
    let Some(items) = expect_seq(ctx, node, "permissions", what) else {
        return Vec::new();
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| convert_one(ctx, item, &format!("permissions[{i}]")))
        .collect()
}

fn convert_one(ctx: &mut Ctx, item: &Node, path: &str) -> Option<Permission> {
    let f = expect_map(ctx, item, path, "a mapping with object and mode, owner, …")?;
    f.warn_unknown(ctx, path, PERMISSION_KEYS);
    let before = ctx.errors.len();

    let object = match opt_text(ctx, f, "object", path, "an absolute path") {
        None => {
            if f.get("object").is_none() {
                ctx.err(
                    f.pos,
                    &join(path, "object"),
                    "missing; expected an absolute path",
                );
            }
            None
        }
        Some(o) => {
            let o = o.trim().to_string();
            let pos = f.get("object").map_or(f.pos, |n| n.pos);
            if !o.starts_with('/') {
                let found = if o.is_empty() {
                    "nothing".to_string()
                } else {
                    format!("{o:?}")
                };
                ctx.err(
                    pos,
                    &join(path, "object"),
                    format!("expected an absolute path such as /opt/app, found {found}"),
                );
            }
            Some(o)
        }
    };
    let pattern = opt_text(ctx, f, "pattern", path, "a glob pattern such as *.sh")
        .unwrap_or_else(|| "**".to_string());
    let except = text_list(ctx, f, "except", path, "a list of glob patterns");
    let owner = opt_text(ctx, f, "owner", path, "a user name");
    let group = opt_text(ctx, f, "group", path, "a group name");
    let mode = f.get("mode").and_then(|node| {
        let field = join(path, "mode");
        let text = expect_text(ctx, node, &field, "a file mode such as 644")?;
        parse_mode(&text)
            .map_err(|e| ctx.err(node.pos, &field, e.to_string()))
            .ok()
    });
    let acls = match f.get("acls") {
        None => Vec::new(),
        Some(node) => {
            let field = join(path, "acls");
            let items = expect_seq(ctx, node, &field, "a list of ACL entries such as u:bob:rwx")
                .unwrap_or_default();
            items
                .iter()
                .enumerate()
                .filter_map(|(i, n)| {
                    let field = format!("{field}[{i}]");
                    let text = expect_text(ctx, n, &field, "an ACL entry such as u:bob:rwx")?;
                    parse_ace(&text)
                        .map_err(|e| ctx.err(n.pos, &field, e.to_string()))
                        .ok()
                })
                .collect()
        }
    };
    let context = f
        .get("context")
        .and_then(|node| convert_context(ctx, node, &join(path, "context")));
    let types = convert_types(ctx, f, path);

    if ctx.errors.len() > before {
        return None;
    }
    Some(Permission {
        object: object?,
        pattern,
        except,
        owner,
        group,
        mode,
        acls,
        context,
        types,
        pos: item.pos,
    })
}

fn text_list(ctx: &mut Ctx, f: Fields<'_>, key: &str, path: &str, what: &str) -> Vec<String> {
    let Some(node) = f.get(key) else {
        return Vec::new();
    };
    let field = join(path, key);
    let items = expect_seq(ctx, node, &field, what).unwrap_or_default();
    items
        .iter()
        .enumerate()
        .filter_map(|(i, n)| expect_text(ctx, n, &format!("{field}[{i}]"), "a text entry"))
        .collect()
}

fn convert_context(ctx: &mut Ctx, node: &Node, path: &str) -> Option<SeContext> {
    let f = expect_map(
        ctx,
        node,
        path,
        "a mapping with type, and optional name and range",
    )?;
    f.warn_unknown(ctx, path, CONTEXT_KEYS);
    let user = opt_text(ctx, f, "name", path, "an SELinux user such as system_u");
    let type_ = match opt_text(
        ctx,
        f,
        "type",
        path,
        "an SELinux type such as httpd_sys_content_t",
    ) {
        Some(t) if !t.trim().is_empty() => Some(t.trim().to_string()),
        Some(_) | None => {
            if f.get("type").is_none_or(|n| n.as_scalar().is_some()) {
                ctx.err(
                    f.get("type").map_or(f.pos, |n| n.pos),
                    &join(path, "type"),
                    "missing; a context needs an SELinux type such as httpd_sys_content_t",
                );
            }
            None
        }
    };
    let range = f.get("range").and_then(|n| {
        let field = join(path, "range");
        let text = expect_text(ctx, n, &field, "an MLS range such as s0 or s0-s3:c0.c5")?;
        parse_range(&text)
            .map_err(|e| ctx.err(n.pos, &field, e.to_string()))
            .ok()
    });
    Some(SeContext {
        user,
        type_: type_?,
        range,
    })
}

fn convert_types(ctx: &mut Ctx, f: Fields<'_>, path: &str) -> ObjectTypes {
    let Some(node) = f.get("type") else {
        return ObjectTypes::default();
    };
    let field = join(path, "type");
    let what = "a list of object types such as [file] or [file, directory]";
    let Some(items) = expect_seq(ctx, node, &field, what) else {
        return ObjectTypes::default();
    };
    let mut types = ObjectTypes {
        file: false,
        directory: false,
    };
    for (i, n) in items.iter().enumerate() {
        let field = format!("{field}[{i}]");
        match n.as_scalar().map(str::trim) {
            Some("file") => types.file = true,
            Some("directory") => types.directory = true,
            _ => ctx.err(
                n.pos,
                &field,
                format!("expected file or directory, found {}", n.describe()),
            ),
        }
    }
    if items.is_empty() {
        ctx.err(node.pos, &field, format!("empty; expected {what}"));
    }
    types
}

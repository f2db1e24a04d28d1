//! `<group>-install.json` (docs/behaviour/install.md#install-json): the plan as the official
//!   instruction list.
//!
//! Invariants: compact JSON, keys in the official order; a context without a range renders
//! `"range":null` (the official agent crashes there, docs/behaviour/official-quirks.md#quirk-10);
//! per path the permission instructions appear in the order they are applied: chown, chmod,
//! setfacl, semanage.

use super::files::disp;
use super::{InstallPlan, Step};
use serde::Serialize;
use std::io::{self, Write};

#[derive(Serialize)]
struct Context {
    user: Option<String>,
    role: Option<String>,
    #[serde(rename = "type")]
    type_: String,
    range: Option<String>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Instruction {
    Copy {
        source: String,
        destination: String,
    },
    Mkdir {
        directory: String,
    },
    Chown {
        owner: Option<String>,
        group: Option<String>,
        file: String,
    },
    Chmod {
        mode: String,
        file: String,
    },
    Setfacl {
        acl: Vec<String>,
        file: String,
    },
    Semanage {
        context: Context,
        file: String,
    },
}

/// Renders the plan's instruction list.
pub fn install_json(plan: &InstallPlan) -> String {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write_install_json(plan, &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Writes the plan's instruction list one instruction at a time, so the document of a
/// large revision is never held in memory.
pub fn write_install_json(plan: &InstallPlan, w: &mut dyn Write) -> io::Result<()> {
    w.write_all(b"{\"instructions\":[")?;
    let mut first = true;
    let mut emit = |w: &mut dyn Write, i: &Instruction| -> io::Result<()> {
        if !std::mem::take(&mut first) {
            w.write_all(b",")?;
        }
        serde_json::to_writer(&mut *w, i).map_err(io::Error::from)
    };
    for step in plan.steps() {
        match step? {
            Step::Copy {
                source,
                destination,
                ..
            } => emit(
                w,
                &Instruction::Copy {
                    source: disp(&source),
                    destination: disp(&destination),
                },
            )?,
            Step::Mkdir { dir, .. } => emit(
                w,
                &Instruction::Mkdir {
                    directory: disp(&dir),
                },
            )?,
            Step::SetPermissions(p) => {
                let file = disp(&p.path);
                if p.owner.is_some() || p.group.is_some() {
                    emit(
                        w,
                        &Instruction::Chown {
                            owner: p.owner.clone(),
                            group: p.group.clone(),
                            file: file.clone(),
                        },
                    )?;
                }
                if let Some(mode) = p.mode {
                    emit(
                        w,
                        &Instruction::Chmod {
                            mode: mode.to_string(),
                            file: file.clone(),
                        },
                    )?;
                }
                if !p.acls.is_empty() {
                    emit(
                        w,
                        &Instruction::Setfacl {
                            acl: p.acls.iter().map(ToString::to_string).collect(),
                            file: file.clone(),
                        },
                    )?;
                }
                if let Some(c) = &p.context {
                    emit(
                        w,
                        &Instruction::Semanage {
                            context: Context {
                                user: c.user.clone(),
                                role: None,
                                type_: c.type_.clone(),
                                range: c.range.as_ref().map(ToString::to_string),
                            },
                            file,
                        },
                    )?;
                }
            }
        }
    }
    w.write_all(b"]}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::appspec::model::{Ace, AceKind, Mode, Pos, SeContext};
    use crate::plan::PermissionStep;

    #[test]
    fn official_shape() {
        let plan = InstallPlan::from_steps(
            vec![
                Step::Mkdir {
                    dir: "/d".into(),
                    replace: false,
                },
                Step::Copy {
                    source: "/a/f".into(),
                    destination: "/d/f".into(),
                    replace: false,
                },
                Step::SetPermissions(Box::new(PermissionStep {
                    path: "/d/f".into(),
                    mode: Some(Mode(0o744)),
                    acls: vec![Ace {
                        default: false,
                        kind: AceKind::User,
                        name: "bob".into(),
                        perms: 7,
                    }],
                    context: Some(SeContext {
                        user: Some("name".into()),
                        type_: "type".into(),
                        range: None,
                    }),
                    owner: Some("bob".into()),
                    group: None,
                    object: "/d".into(),
                    pos: Pos::default(),
                })),
            ],
            vec![],
        );
        assert_eq!(
            install_json(&plan),
            r#"{"instructions":[{"type":"mkdir","directory":"/d"},{"type":"copy","source":"/a/f","destination":"/d/f"},{"type":"chown","owner":"bob","group":null,"file":"/d/f"},{"type":"chmod","mode":"744","file":"/d/f"},{"type":"setfacl","acl":["user:bob:rwx"],"file":"/d/f"},{"type":"semanage","context":{"user":"name","role":null,"type":"type","range":null},"file":"/d/f"}]}"#
        );
    }
}

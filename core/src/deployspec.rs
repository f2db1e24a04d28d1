//! PURE: the deployment specification (docs/behaviour/deployment-spec.md#spec-fields) as typed
//! data, decoded from the JSON the service signs; the local tool builds the same type itself
//! (docs/behaviour/local-cli.md#local-deployment).
//!
//! Invariant: a `DeploymentSpec` has every required field set and a revision whose bundle
//! type is valid for its source; errors name the JSON field.
//!
//! Why the JSON is walked by hand rather than derived with serde: the decoder is deliberately
//! as tolerant as the official agent (an optional member of the wrong type, an empty
//! `AllPossibleLifecycleEvents`, an unknown `DeploymentCreator` are read as absent or as
//! "other", not refused), its errors name the member path
//! (`AgentActionOverrides.AgentOverrides.FileExistsBehavior`), and it validates straight into
//! the domain types (short deployment id, directory-safe names, one revision source). A
//! derived `Deserialize` would refuse what the service may send and name a line and column.

use crate::appspec::FileExistsBehavior;
use crate::lifecycle::{Creator, DeploymentType};
use serde_json::{json, Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleType {
    Tar,
    Tgz,
    Zip,
    Directory,
}

impl BundleType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "tar" => Some(Self::Tar),
            "tgz" => Some(Self::Tgz),
            "zip" => Some(Self::Zip),
            "directory" => Some(Self::Directory),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tar => "tar",
            Self::Tgz => "tgz",
            Self::Zip => "zip",
            Self::Directory => "directory",
        }
    }
}

/// An unknown bundle type string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bundle type {0:?} (expected tar, tgz, zip or directory)")]
pub struct UnknownBundleType(pub String);

impl std::str::FromStr for BundleType {
    type Err = UnknownBundleType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or_else(|| UnknownBundleType(s.to_string()))
    }
}

impl std::fmt::Display for BundleType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revision {
    S3 {
        bucket: String,
        key: String,
        bundle_type: BundleType,
        version: Option<String>,
        etag: Option<String>,
    },
    GitHub {
        account: String,
        repository: String,
        commit: String,
        bundle_type: BundleType,
    },
    LocalFile {
        location: String,
        bundle_type: BundleType,
    },
    LocalDirectory {
        location: String,
    },
}

impl Revision {
    pub fn bundle_type(&self) -> BundleType {
        match self {
            Self::S3 { bundle_type, .. }
            | Self::GitHub { bundle_type, .. }
            | Self::LocalFile { bundle_type, .. } => *bundle_type,
            Self::LocalDirectory { .. } => BundleType::Directory,
        }
    }

    /// The BUNDLE_* variables hooks receive (docs/behaviour/hooks.md#hook-process). Absent values
    /// are left out.
    pub fn hook_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        match self {
            Self::S3 {
                bucket,
                key,
                version,
                etag,
                ..
            } => {
                env.push(("BUNDLE_BUCKET".into(), bucket.clone()));
                env.push(("BUNDLE_KEY".into(), key.clone()));
                if let Some(v) = version {
                    env.push(("BUNDLE_VERSION".into(), v.clone()));
                }
                if let Some(e) = etag {
                    env.push(("BUNDLE_ETAG".into(), e.clone()));
                }
            }
            Self::GitHub { commit, .. } => env.push(("BUNDLE_COMMIT".into(), commit.clone())),
            Self::LocalFile { .. } | Self::LocalDirectory { .. } => {}
        }
        env
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentSpec {
    /// The short id (`d-ABC`), also when the service sent an ARN.
    pub deployment_id: String,
    pub group_id: String,
    pub group_name: String,
    pub application_name: String,
    pub creator: Creator,
    pub deployment_type: DeploymentType,
    /// `AppSpecFilename`; None means appspec.yml then appspec.yaml.
    pub appspec_filename: Option<String>,
    pub file_exists_behavior: Option<FileExistsBehavior>,
    pub all_possible_events: Option<Vec<String>>,
    pub github_token: Option<String>,
    pub revision: Revision,
}

/// A spec the agent cannot act on; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, SpecError> {
    Err(SpecError(m.into()))
}

/// A string member that is present, non-null and non-empty.
fn set_str<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn required(obj: &Map<String, Value>, key: &str, what: &str) -> Result<String, SpecError> {
    match set_str(obj, key) {
        Some(s) => Ok(s.to_string()),
        None => err(format!("Deployment Spec has no {what}")),
    }
}

/// `arn:aws:codedeploy:us-east-1:111:deployment/d-ABC` -> `d-ABC`.
pub fn short_deployment_id(id: &str) -> &str {
    if !id.starts_with("arn:") {
        return id;
    }
    id.splitn(6, ':')
        .nth(5)
        .and_then(|res| res.split_once('/').map(|(_, rest)| rest))
        .unwrap_or(id)
}

/// Decodes the JSON document of a deployment spec (after any signature check).
pub fn decode(text: &str) -> Result<DeploymentSpec, SpecError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| SpecError(format!("deployment spec is not valid JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return err("deployment spec is not a JSON object");
    };
    let deployment_id =
        short_deployment_id(&required(obj, "DeploymentId", "DeploymentId")?).to_string();
    let group_id = required(obj, "DeploymentGroupId", "DeploymentGroupId")?;
    let group_name = required(obj, "DeploymentGroupName", "DeploymentGroupName")?;
    let application_name = required(obj, "ApplicationName", "ApplicationName")?;
    for (field, value) in [
        ("DeploymentId", &deployment_id),
        ("DeploymentGroupId", &group_id),
    ] {
        // These become directory names: refuse anything that could leave the root, or name
        // the group directory itself (an ARN ending in `/` shortens to nothing).
        if !crate::names::usable_as_dir_name(value) {
            return err(format!(
                "{field} {value:?} cannot be used as a directory name"
            ));
        }
    }
    let creator = match set_str(obj, "DeploymentCreator") {
        None | Some("user") => Creator::User,
        Some("codeDeployRollback") => Creator::Rollback,
        Some(_) => Creator::Other,
    };
    let deployment_type = match set_str(obj, "DeploymentType") {
        Some("BLUE_GREEN") => DeploymentType::BlueGreen,
        _ => DeploymentType::InPlace,
    };
    let file_exists_behavior = match obj
        .get("AgentActionOverrides")
        .and_then(|o| o.get("AgentOverrides"))
        .and_then(|o| o.get("FileExistsBehavior"))
        .and_then(Value::as_str)
    {
        None => None,
        Some(s) => Some(FileExistsBehavior::parse(&s.to_uppercase()).ok_or_else(|| {
            SpecError(format!(
                "AgentActionOverrides.AgentOverrides.FileExistsBehavior {s:?} is not one of DISALLOW, OVERWRITE, RETAIN"
            ))
        })?),
    };
    let all_possible_events = match obj.get("AllPossibleLifecycleEvents") {
        Some(Value::Array(a)) if !a.is_empty() => Some(
            a.iter()
                .map(|e| {
                    e.as_str().map(str::to_string).ok_or_else(|| {
                        SpecError("AllPossibleLifecycleEvents must be a list of strings".into())
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => None,
    };
    let revision = decode_revision(obj.get("Revision"))?;
    Ok(DeploymentSpec {
        deployment_id,
        group_id,
        group_name,
        application_name,
        creator,
        deployment_type,
        appspec_filename: set_str(obj, "AppSpecFilename").map(str::to_string),
        file_exists_behavior,
        all_possible_events,
        github_token: set_str(obj, "GitHubAccessToken").map(str::to_string),
        revision,
    })
}

fn decode_revision(rev: Option<&Value>) -> Result<Revision, SpecError> {
    let rev = match rev {
        None | Some(Value::Null) => return err("Must specify a revision (Revision is missing)"),
        Some(Value::Object(o)) => o,
        Some(_) => return err("Must specify a revision source (Revision is not an object)"),
    };
    let Some(kind) = set_str(rev, "RevisionType") else {
        return err("Must specify a revision source (Revision.RevisionType is missing)");
    };
    let sub = |key: &str| rev.get(key).and_then(Value::as_object);
    match kind {
        "S3" => {
            let s3 = sub("S3Revision");
            let (Some(bucket), Some(key), Some(bt)) = (
                s3.and_then(|o| set_str(o, "Bucket")),
                s3.and_then(|o| set_str(o, "Key")),
                s3.and_then(|o| set_str(o, "BundleType")),
            ) else {
                return err(
                    "S3Revision in Deployment Spec must specify Bucket, Key and BundleType",
                );
            };
            let bundle_type = match BundleType::parse(bt) {
                Some(t) if t != BundleType::Directory => t,
                _ => return err("BundleType in S3Revision must be tar, tgz or zip"),
            };
            let opt = |k| s3.and_then(|o| set_str(o, k)).map(str::to_string);
            Ok(Revision::S3 {
                bucket: bucket.into(),
                key: key.into(),
                bundle_type,
                version: opt("Version"),
                etag: opt("ETag"),
            })
        }
        "GitHub" => {
            let gh = sub("GitHubRevision");
            let (Some(account), Some(repository), Some(commit)) = (
                gh.and_then(|o| set_str(o, "Account")),
                gh.and_then(|o| set_str(o, "Repository")),
                gh.and_then(|o| set_str(o, "CommitId")),
            ) else {
                return err("GitHubRevision in Deployment Spec must specify Account, Repository and CommitId");
            };
            let bundle_type = match gh.and_then(|o| set_str(o, "BundleType")) {
                None | Some("tar") => BundleType::Tar,
                Some("zip") => BundleType::Zip,
                Some(other) => {
                    return err(format!(
                        "GitHub revision specified with bundle_type other than zip or tar [bundle_type={other}]"
                    ))
                }
            };
            Ok(Revision::GitHub {
                account: account.into(),
                repository: repository.into(),
                commit: commit.into(),
                bundle_type,
            })
        }
        "Local File" | "Local Directory" => {
            let local = sub("LocalRevision");
            let (Some(location), Some(bt)) = (
                local.and_then(|o| set_str(o, "Location")),
                local.and_then(|o| set_str(o, "BundleType")),
            ) else {
                return err(
                    "LocalRevision in Deployment Spec must specify Location and BundleType",
                );
            };
            let Some(bundle_type) = BundleType::parse(bt) else {
                return err("BundleType in LocalRevision must be tar, tgz, zip, or directory");
            };
            Ok(if bundle_type == BundleType::Directory {
                Revision::LocalDirectory {
                    location: location.into(),
                }
            } else {
                Revision::LocalFile {
                    location: location.into(),
                    bundle_type,
                }
            })
        }
        _ => err("Exactly one of S3Revision, GitHubRevision, or LocalRevision must be specified"),
    }
}

/// The spec as the service's JSON (docs/behaviour/deployment-spec.md#spec-fields). Only tests
/// and the `deployspec` fuzz target call it, to check that `decode(encode(spec))` gives the
/// spec back; the local tool builds its `DeploymentSpec` directly
/// (docs/behaviour/local-cli.md#local-deployment).
pub fn encode(spec: &DeploymentSpec) -> String {
    let revision = match &spec.revision {
        Revision::S3 {
            bucket,
            key,
            bundle_type,
            version,
            etag,
        } => {
            let mut s3 = json!({"Bucket": bucket, "Key": key, "BundleType": bundle_type.as_str()});
            if let Some(v) = version {
                s3["Version"] = json!(v);
            }
            if let Some(e) = etag {
                s3["ETag"] = json!(e);
            }
            json!({"RevisionType": "S3", "S3Revision": s3})
        }
        Revision::GitHub {
            account,
            repository,
            commit,
            bundle_type,
        } => json!({"RevisionType": "GitHub", "GitHubRevision": {
            "Account": account, "Repository": repository, "CommitId": commit,
            "BundleType": bundle_type.as_str()}}),
        Revision::LocalFile {
            location,
            bundle_type,
        } => json!({"RevisionType": "Local File", "LocalRevision": {
            "Location": location, "BundleType": bundle_type.as_str()}}),
        Revision::LocalDirectory { location } => json!({"RevisionType": "Local Directory",
            "LocalRevision": {"Location": location, "BundleType": "directory"}}),
    };
    let mut v = json!({
        "DeploymentId": spec.deployment_id,
        "DeploymentGroupId": spec.group_id,
        "DeploymentGroupName": spec.group_name,
        "ApplicationName": spec.application_name,
        "Revision": revision,
    });
    if let Some(f) = &spec.appspec_filename {
        v["AppSpecFilename"] = json!(f);
    }
    if let Some(b) = spec.file_exists_behavior {
        v["AgentActionOverrides"] = json!({"AgentOverrides": {"FileExistsBehavior": b.as_str()}});
    }
    if let Some(all) = &spec.all_possible_events {
        v["AllPossibleLifecycleEvents"] = json!(all);
    }
    if spec.creator == Creator::Rollback {
        v["DeploymentCreator"] = json!("codeDeployRollback");
    }
    if spec.deployment_type == DeploymentType::BlueGreen {
        v["DeploymentType"] = json!("BLUE_GREEN");
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        json!({"DeploymentId": "d-ABC", "DeploymentGroupId": "g-1", "DeploymentGroupName": "grp",
               "ApplicationName": "app", "Revision": {"RevisionType": "S3",
               "S3Revision": {"Bucket": "b", "Key": "k.zip", "BundleType": "zip", "ETag": "\"e\""}}})
    }

    #[test]
    fn decodes_s3_spec_and_defaults() {
        let s = decode(&base().to_string()).unwrap();
        assert_eq!(s.deployment_id, "d-ABC");
        assert_eq!(s.creator, Creator::User);
        assert_eq!(s.deployment_type, DeploymentType::InPlace);
        assert_eq!(s.file_exists_behavior, None);
        assert_eq!(
            s.revision.hook_env(),
            vec![
                ("BUNDLE_BUCKET".to_string(), "b".to_string()),
                ("BUNDLE_KEY".to_string(), "k.zip".to_string()),
                ("BUNDLE_ETAG".to_string(), "\"e\"".to_string())
            ]
        );
    }

    /// Found by the deployspec fuzz target: `deployment/` with nothing after it shortened to an
    /// empty id, and the deployment's directory became its group's directory.
    #[test]
    fn an_arn_without_a_resource_id_is_refused() {
        let text = r#"{"DeploymentId": "arn:aws:codedeploy:us-east-1:1:deployment/",
            "DeploymentGroupId": "g", "DeploymentGroupName": "g", "ApplicationName": "a",
            "Revision": {"RevisionType": "S3",
                "S3Revision": {"Bucket": "b", "Key": "k", "BundleType": "zip"}}}"#;
        assert_eq!(
            decode(text).unwrap_err().0,
            r#"DeploymentId "" cannot be used as a directory name"#
        );
    }

    #[test]
    fn arn_ids_are_shortened() {
        assert_eq!(
            short_deployment_id("arn:aws:codedeploy:us-east-1:111:deployment/d-ABC"),
            "d-ABC"
        );
        assert_eq!(short_deployment_id("d-XYZ"), "d-XYZ");
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, Value, &str)] = &[
            (
                "DeploymentId",
                Value::Null,
                "Deployment Spec has no DeploymentId",
            ),
            (
                "DeploymentGroupId",
                json!(""),
                "Deployment Spec has no DeploymentGroupId",
            ),
            (
                "DeploymentGroupName",
                Value::Null,
                "Deployment Spec has no DeploymentGroupName",
            ),
            (
                "ApplicationName",
                Value::Null,
                "Deployment Spec has no ApplicationName",
            ),
            ("Revision", Value::Null, "Must specify a revision"),
            ("Revision", json!(""), "Must specify a revision source"),
            (
                "Revision",
                json!({"RevisionType": "S3", "S3Revision": {"Bucket": "b"}}),
                "must specify Bucket, Key and BundleType",
            ),
            (
                "Revision",
                json!({"RevisionType": "S3", "S3Revision": {"Bucket": "b", "Key": "k", "BundleType": "bar"}}),
                "BundleType in S3Revision must be tar, tgz or zip",
            ),
            (
                "Revision",
                json!({"RevisionType": "Local File", "LocalRevision": {"Location": "/x", "BundleType": "rar"}}),
                "BundleType in LocalRevision must be tar, tgz, zip, or directory",
            ),
            (
                "Revision",
                json!({"RevisionType": "Nope"}),
                "Exactly one of S3Revision",
            ),
            (
                "DeploymentId",
                json!("../x"),
                "cannot be used as a directory name",
            ),
        ];
        for (field, value, want) in cases {
            let mut v = base();
            v[*field] = value.clone();
            let e = decode(&v.to_string()).unwrap_err();
            assert!(e.0.contains(want), "{field}: {e}");
        }
    }

    #[test]
    fn local_spec_round_trips() {
        let spec = DeploymentSpec {
            deployment_id: "d-1-local".into(),
            group_id: "g".into(),
            group_name: "LocalFleet".into(),
            application_name: "/src".into(),
            creator: Creator::Rollback,
            deployment_type: DeploymentType::InPlace,
            appspec_filename: Some("custom.yml".into()),
            file_exists_behavior: Some(FileExistsBehavior::Retain),
            all_possible_events: Some(vec!["A".into()]),
            github_token: None,
            revision: Revision::LocalDirectory {
                location: "/src".into(),
            },
        };
        assert_eq!(decode(&encode(&spec)).unwrap(), spec);
    }
}

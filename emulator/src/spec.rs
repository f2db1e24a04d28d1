//! PURE: the deployment specification JSON (docs/behaviour/deployment-spec.md#spec-fields) of a
//! deployment.
//!
//! Every field the agent reads is produced: ids and names, creator, type, file-exists
//! override, all possible lifecycle events, GitHub token, and the S3 or GitHub revision.
//! Signing and enveloping happen in the caller (see `pki`).

use crate::model::{Creator, Deployment, Revision};
use crate::schedule::ALL_LIFECYCLE_EVENTS;
use serde_json::{json, Map, Value};

/// The JSON document sent (signed or as text) for `deployment`.
pub fn spec_json(d: &Deployment) -> Value {
    let r = &d.request;
    let mut m = Map::new();
    m.insert("DeploymentId".into(), json!(d.deployment_id));
    m.insert("DeploymentGroupId".into(), json!(d.group_id));
    m.insert("DeploymentGroupName".into(), json!(r.group));
    m.insert("ApplicationName".into(), json!(r.application));
    m.insert(
        "DeploymentCreator".into(),
        json!(match d.creator {
            Creator::User => "user",
            Creator::CodeDeployRollback => "codeDeployRollback",
        }),
    );
    m.insert(
        "DeploymentType".into(),
        json!(if r.blue_green.is_some() {
            "BLUE_GREEN"
        } else {
            "IN_PLACE"
        }),
    );
    if let Some(f) = &r.file_exists_behavior {
        m.insert(
            "AgentActionOverrides".into(),
            json!({ "AgentOverrides": { "FileExistsBehavior": f } }),
        );
    }
    let events: Vec<String> = match &r.all_possible_lifecycle_events {
        Some(list) => list.clone(),
        None => ALL_LIFECYCLE_EVENTS.iter().map(|s| s.to_string()).collect(),
    };
    m.insert("AllPossibleLifecycleEvents".into(), json!(events));
    if let Some(name) = &r.app_spec_filename {
        m.insert("AppSpecFilename".into(), json!(name));
    }
    if let Some(token) = &r.github_access_token {
        m.insert("GitHubAccessToken".into(), json!(token));
    }
    m.insert(
        "Revision".into(),
        revision_json(&r.revision, r.github_access_token.as_deref()),
    );
    Value::Object(m)
}

fn revision_json(rev: &Revision, token: Option<&str>) -> Value {
    match rev {
        Revision::S3 {
            bucket,
            key,
            bundle_type,
            version,
            etag,
        } => {
            let mut s3 = Map::new();
            s3.insert("Bucket".into(), json!(bucket));
            s3.insert("Key".into(), json!(key));
            s3.insert("BundleType".into(), json!(bundle_type));
            if let Some(v) = version {
                s3.insert("Version".into(), json!(v));
            }
            if let Some(e) = etag {
                s3.insert("ETag".into(), json!(e));
            }
            json!({ "RevisionType": "S3", "S3Revision": s3 })
        }
        Revision::GitHub {
            account,
            repository,
            commit_id,
            bundle_type,
        } => {
            let mut gh = Map::new();
            gh.insert("Account".into(), json!(account));
            gh.insert("Repository".into(), json!(repository));
            gh.insert("CommitId".into(), json!(commit_id));
            gh.insert("Anonymous".into(), json!(token.is_none()));
            if let Some(t) = token {
                // The agent insists on this key whenever Anonymous is false.
                gh.insert("OAuthToken".into(), json!(t));
            }
            if let Some(b) = bundle_type {
                gh.insert("BundleType".into(), json!(b));
            }
            json!({ "RevisionType": "GitHub", "GitHubRevision": gh })
        }
    }
}

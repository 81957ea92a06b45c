//! The generated CustomResourceDefinitions, as printed by `kvop crds` and stored in `crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

use crate::api::{KeyValueBucket, KeyValueEntry};

/// Both CRDs, bucket first, as (file name, definition).
pub fn all() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        ("keyvaluebuckets.kvop.dev.yaml", KeyValueBucket::crd()),
        ("keyvalueentries.kvop.dev.yaml", KeyValueEntry::crd()),
    ]
}

/// Both CRDs as one multi-document YAML stream.
pub fn render_all() -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for (_, crd) in all() {
        out.push_str("---\n");
        out.push_str(&render(&crd)?);
    }
    Ok(out)
}

/// One CRD as YAML.
pub fn render(crd: &CustomResourceDefinition) -> Result<String, serde_saphyr::SerializeError> {
    crate::manifest::yaml::to_string(crd)
}

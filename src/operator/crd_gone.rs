//! Whether a kind's CRD is being deleted. Deleting a CRD deletes every object of its
//! kind, and each deletion would run its cleanup: an Argo CD prune or a `helm uninstall`
//! script that took the CRD wrote a delete marker on every key kvop manages. While the
//! CRD is going, finalizers are released without touching NATS.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Resource;
use kube::api::Api;
use kube::core::PartialObjectMeta;

/// Whether the CRD of `K` is being deleted, or gone. An answer the operator may not
/// read (no RBAC for CRDs, an apiserver error) counts as "no": cleanup goes on as
/// declared.
pub async fn crd_going<K: Resource<DynamicType = ()>>(client: &kube::Client) -> bool {
    let name = format!("{}.{}", K::plural(&()), K::group(&()));
    let crds: Api<PartialObjectMeta<CustomResourceDefinition>> = Api::all(client.clone());
    match crds.get_metadata_opt(&name).await {
        Ok(Some(crd)) => crd.metadata.deletion_timestamp.is_some(),
        Ok(None) => true,
        Err(error) => {
            tracing::debug!(%error, crd = %name, "could not read the CRD; cleaning up as declared");
            false
        }
    }
}

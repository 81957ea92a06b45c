//! The chart's MutatingAdmissionPolicy (charts/kvop/files/cleanup-finalizer-policy.yaml),
//! which sets kvop's finalizer as an entry is created, installed on the test plane
//! (MutatingAdmissionPolicy on, tests/env/k8s-up.sh) for one namespace only, so other
//! tests' entries on the same plane are not touched.

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kvop::api::KeyValueEntry;
use serde_json::{Value, json};

use super::k8s::wait_until;
use super::resources::{WAIT, entry, merge};

/// The chart's policy with a binding for one namespace, removed when dropped.
pub struct AdmissionPolicy {
    policies: Api<DynamicObject>,
    bindings: Api<DynamicObject>,
    name: String,
}

impl AdmissionPolicy {
    pub async fn install(client: &kube::Client, namespace: &str) -> Self {
        let file = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/charts/kvop/files/cleanup-finalizer-policy.yaml"
        );
        let text = std::fs::read_to_string(file).expect("read the chart's policy");
        let mut policy: Value = serde_saphyr::from_str(&text).expect("policy YAML");
        let name = format!("{namespace}-cleanup-finalizer");
        policy["metadata"] = json!({"name": name});
        let binding = json!({
            "apiVersion": "admissionregistration.k8s.io/v1beta1",
            "kind": "MutatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "matchResources": {"namespaceSelector": {"matchLabels": {
                    "kubernetes.io/metadata.name": namespace,
                }}},
            },
        });
        let installed = AdmissionPolicy {
            policies: Api::all_with(client.clone(), &resource("MutatingAdmissionPolicy")),
            bindings: Api::all_with(client.clone(), &resource("MutatingAdmissionPolicyBinding")),
            name,
        };
        let apply = PatchParams::apply("kvop-test");
        for (api, object) in [
            (&installed.policies, policy),
            (&installed.bindings, binding),
        ] {
            api.patch(&installed.name, &apply, &Patch::Apply(object))
                .await
                .expect("install the admission policy");
        }
        installed
            .wait_until_in_force(Api::namespaced(client.clone(), namespace))
            .await;
        installed
    }

    /// The apiserver loads a new policy within about a second; until then an entry is
    /// created without the finalizer. Probes tell when it is in force.
    async fn wait_until_in_force(&self, probes: Api<KeyValueEntry>) {
        let mut attempt = 0;
        wait_until("the admission policy in force", WAIT, || {
            attempt += 1;
            let name = format!("probe-{attempt}");
            let probes = probes.clone();
            async move {
                let probe = entry(&name, "none", "probe", "v", json!({}));
                let created = probes.create(&PostParams::default(), &probe).await.ok()?;
                let finalized = !created.metadata.finalizers.unwrap_or_default().is_empty();
                // No operator runs yet: the probe's finalizer is taken off by hand.
                let release = json!({"metadata": {"finalizers": null}});
                let _ = merge(&probes, &name, release).await;
                let _ = probes.delete(&name, &DeleteParams::default()).await;
                finalized.then_some(())
            }
        })
        .await;
    }
}

impl Drop for AdmissionPolicy {
    fn drop(&mut self) {
        let (policies, bindings, name) = (
            self.policies.clone(),
            self.bindings.clone(),
            self.name.clone(),
        );
        // Best effort: the plane is thrown away after the run anyway.
        tokio::spawn(async move {
            let _ = bindings.delete(&name, &DeleteParams::default()).await;
            let _ = policies.delete(&name, &DeleteParams::default()).await;
        });
    }
}

fn resource(kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "admissionregistration.k8s.io",
        "v1beta1",
        kind,
    ))
}

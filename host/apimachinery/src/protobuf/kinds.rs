//! Which k8s-pb message decodes an object of a given apiVersion and kind.
//!
//! k8s-pb (kube-rs' bindings of the Kubernetes 1.33 `generated.proto` files) has no runtime registry
//! of its messages, so this module names them: every top-level kind k8s-pb implements
//! `k8s_pb::Resource` for (the key is the type's own `API_VERSION` and `KIND`), plus the subresource
//! bodies typed clients send as protobuf (Scale, Eviction, TokenRequest). Decoding is k8s-pb's own
//! generated code; what comes out is the message's `Debug` text, which `debug.rs` reads back as a
//! tree. Serving another built-in kind needs nothing here unless k8s-pb lacks it.

use prost::Message;

type Decoder = fn(&[u8]) -> Result<String, prost::DecodeError>;

fn debug_text<M: Message + Default + std::fmt::Debug>(raw: &[u8]) -> Result<String, prost::DecodeError> {
    M::decode(raw).map(|m| format!("{m:?}"))
}

/// A k8s-pb kind keyed by its `Resource` constants.
macro_rules! resource {
    ($($seg:ident)::+) => {
        (
            <k8s_pb::$($seg)::+ as k8s_pb::Resource>::API_VERSION,
            <k8s_pb::$($seg)::+ as k8s_pb::Resource>::KIND,
            debug_text::<k8s_pb::$($seg)::+> as Decoder,
        )
    };
}

const KINDS: &[(&str, &str, Decoder)] = &[
    resource!(api::admissionregistration::v1::MutatingWebhookConfiguration),
    resource!(api::admissionregistration::v1::ValidatingAdmissionPolicy),
    resource!(api::admissionregistration::v1::ValidatingAdmissionPolicyBinding),
    resource!(api::admissionregistration::v1::ValidatingWebhookConfiguration),
    resource!(api::admissionregistration::v1alpha1::MutatingAdmissionPolicy),
    resource!(api::admissionregistration::v1alpha1::MutatingAdmissionPolicyBinding),
    resource!(api::admissionregistration::v1beta1::ValidatingAdmissionPolicy),
    resource!(api::admissionregistration::v1beta1::ValidatingAdmissionPolicyBinding),
    resource!(api::apiserverinternal::v1alpha1::StorageVersion),
    resource!(api::apps::v1::ControllerRevision),
    resource!(api::apps::v1::DaemonSet),
    resource!(api::apps::v1::Deployment),
    resource!(api::apps::v1::ReplicaSet),
    resource!(api::apps::v1::StatefulSet),
    resource!(api::authentication::v1::SelfSubjectReview),
    resource!(api::authentication::v1::TokenReview),
    resource!(api::authorization::v1::LocalSubjectAccessReview),
    resource!(api::authorization::v1::SelfSubjectAccessReview),
    resource!(api::authorization::v1::SelfSubjectRulesReview),
    resource!(api::authorization::v1::SubjectAccessReview),
    resource!(api::autoscaling::v1::HorizontalPodAutoscaler),
    resource!(api::autoscaling::v2::HorizontalPodAutoscaler),
    resource!(api::batch::v1::CronJob),
    resource!(api::batch::v1::Job),
    resource!(api::certificates::v1::CertificateSigningRequest),
    resource!(api::certificates::v1alpha1::ClusterTrustBundle),
    resource!(api::certificates::v1beta1::ClusterTrustBundle),
    resource!(api::coordination::v1::Lease),
    resource!(api::coordination::v1alpha2::LeaseCandidate),
    resource!(api::coordination::v1beta1::LeaseCandidate),
    resource!(api::core::v1::Binding),
    resource!(api::core::v1::ComponentStatus),
    resource!(api::core::v1::ConfigMap),
    resource!(api::core::v1::Endpoints),
    resource!(api::core::v1::Event),
    resource!(api::core::v1::LimitRange),
    resource!(api::core::v1::Namespace),
    resource!(api::core::v1::Node),
    resource!(api::core::v1::PersistentVolume),
    resource!(api::core::v1::PersistentVolumeClaim),
    resource!(api::core::v1::Pod),
    resource!(api::core::v1::PodTemplate),
    resource!(api::core::v1::ReplicationController),
    resource!(api::core::v1::ResourceQuota),
    resource!(api::core::v1::Secret),
    resource!(api::core::v1::Service),
    resource!(api::core::v1::ServiceAccount),
    resource!(api::discovery::v1::EndpointSlice),
    resource!(api::events::v1::Event),
    resource!(api::flowcontrol::v1::FlowSchema),
    resource!(api::flowcontrol::v1::PriorityLevelConfiguration),
    resource!(api::networking::v1::IPAddress),
    resource!(api::networking::v1::Ingress),
    resource!(api::networking::v1::IngressClass),
    resource!(api::networking::v1::NetworkPolicy),
    resource!(api::networking::v1::ServiceCIDR),
    resource!(api::networking::v1beta1::IPAddress),
    resource!(api::networking::v1beta1::ServiceCIDR),
    resource!(api::node::v1::RuntimeClass),
    resource!(api::policy::v1::PodDisruptionBudget),
    resource!(api::rbac::v1::ClusterRole),
    resource!(api::rbac::v1::ClusterRoleBinding),
    resource!(api::rbac::v1::Role),
    resource!(api::rbac::v1::RoleBinding),
    resource!(api::resource::v1alpha3::DeviceClass),
    resource!(api::resource::v1alpha3::DeviceTaintRule),
    resource!(api::resource::v1alpha3::ResourceClaim),
    resource!(api::resource::v1alpha3::ResourceClaimTemplate),
    resource!(api::resource::v1alpha3::ResourceSlice),
    resource!(api::resource::v1beta1::DeviceClass),
    resource!(api::resource::v1beta1::ResourceClaim),
    resource!(api::resource::v1beta1::ResourceClaimTemplate),
    resource!(api::resource::v1beta1::ResourceSlice),
    resource!(api::resource::v1beta2::DeviceClass),
    resource!(api::resource::v1beta2::ResourceClaim),
    resource!(api::resource::v1beta2::ResourceClaimTemplate),
    resource!(api::resource::v1beta2::ResourceSlice),
    resource!(api::scheduling::v1::PriorityClass),
    resource!(api::storage::v1::CSIDriver),
    resource!(api::storage::v1::CSINode),
    resource!(api::storage::v1::CSIStorageCapacity),
    resource!(api::storage::v1::StorageClass),
    resource!(api::storage::v1::VolumeAttachment),
    resource!(api::storage::v1alpha1::VolumeAttributesClass),
    resource!(api::storage::v1beta1::VolumeAttributesClass),
    resource!(api::storagemigration::v1alpha1::StorageVersionMigration),
    resource!(apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition),
    resource!(kube_aggregator::pkg::apis::apiregistration::v1::APIService),
    (
        "autoscaling/v1",
        "Scale",
        debug_text::<k8s_pb::api::autoscaling::v1::Scale>,
    ),
    (
        "policy/v1",
        "Eviction",
        debug_text::<k8s_pb::api::policy::v1::Eviction>,
    ),
    (
        "authentication.k8s.io/v1",
        "TokenRequest",
        debug_text::<k8s_pb::api::authentication::v1::TokenRequest>,
    ),
];

/// The message's `Debug` text, or None when k8s-pb has no message for the kind.
pub fn decode_to_debug(
    api_version: &str,
    kind: &str,
    raw: &[u8],
) -> Option<Result<String, prost::DecodeError>> {
    KINDS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, decode)| decode(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once() {
        for (i, (v, k, _)) in KINDS.iter().enumerate() {
            assert!(
                !KINDS[..i].iter().any(|(v2, k2, _)| v2 == v && k2 == k),
                "{v} {k} twice"
            );
        }
        assert!(
            KINDS
                .iter()
                .any(|(v, k, _)| *v == "apps/v1" && *k == "Deployment")
        );
        assert!(
            KINDS
                .iter()
                .any(|(v, k, _)| *v == "apiregistration.k8s.io/v1" && *k == "APIService")
        );
    }
}

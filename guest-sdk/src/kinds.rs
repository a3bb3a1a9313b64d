//! Kinds and object references of k8s-openapi types: extension traits of the contract's [`Gvk`] and
//! [`ObjectRef`].

use k8s_openapi::Resource;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{Gvk, ObjectRef};

/// [`Gvk`] of a k8s-openapi type (or any [`Resource`]).
pub trait GvkExt {
    /// The kind of `K`: `Gvk::of::<Deployment>()`.
    fn of<K: Resource>() -> Gvk;
}

impl GvkExt for Gvk {
    fn of<K: Resource>() -> Gvk {
        Gvk::new(K::GROUP, K::VERSION, K::KIND)
    }
}

/// [`ObjectRef`]s to objects of k8s-openapi types.
pub trait ObjectRefExt {
    /// A reference to an object of kind `K`: `ObjectRef::of::<ConfigMap>(Some("ns"), "x")`.
    fn of<K: Resource>(namespace: Option<&str>, name: &str) -> ObjectRef;

    /// A reference to a typed object, from its kind and `metadata`.
    fn from_object<K>(object: &K) -> ObjectRef
    where
        K: Resource + k8s_openapi::Metadata<Ty = ObjectMeta>;
}

impl ObjectRefExt for ObjectRef {
    fn of<K: Resource>(namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef::new(Gvk::of::<K>(), namespace, name)
    }

    fn from_object<K>(object: &K) -> ObjectRef
    where
        K: Resource + k8s_openapi::Metadata<Ty = ObjectMeta>,
    {
        let meta = object.metadata();
        ObjectRef::new(
            Gvk::of::<K>(),
            meta.namespace.as_deref(),
            meta.name.as_deref().unwrap_or_default(),
        )
    }
}

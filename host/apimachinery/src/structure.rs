//! How the lists inside an object merge: the one structural fact that strategic merge patch and
//! server-side apply both need. Built-in kinds get it from a table of well-known merge keys
//! ([`BuiltinStructure`]); custom resources from `x-kubernetes-list-type` / `x-kubernetes-list-map-keys`
//! in their schema (see [`crate::schema`]).

/// How a list at some path merges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole; owned as a whole by server-side apply.
    Atomic,
    /// A set of scalars (`x-kubernetes-list-type: set`, or SMP `patchStrategy: merge` on primitives).
    Set,
    /// A list of objects keyed by these fields (`x-kubernetes-list-map-keys`, or SMP `patchMergeKey`).
    Map(Vec<String>),
}

/// Structural knowledge of one kind.
///
/// `path` is the chain of *field names* from the object root to the list, with list items skipped:
/// `spec.template.spec.containers[3].ports` is `["spec", "template", "spec", "containers", "ports"]`.
pub trait Structure {
    /// How the list at `path` merges.
    fn list_type(&self, path: &[&str]) -> ListType;

    /// Whether the map at `path` is atomic (`x-kubernetes-map-type: atomic`): replaced and owned whole.
    fn map_is_atomic(&self, _path: &[&str]) -> bool {
        false
    }
}

/// Every list atomic: the structure of an object nothing is known about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Atomic;

impl Structure for Atomic {
    fn list_type(&self, _path: &[&str]) -> ListType {
        ListType::Atomic
    }
}

/// Merge keys of the built-in Kubernetes kinds (the `patchMergeKey` / `listMapKeys` of their Go types).
///
/// One table for every built-in kind: a list is recognised by its field name and, where the same
/// name means different things, its parent.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinStructure;

impl Structure for BuiltinStructure {
    fn list_type(&self, path: &[&str]) -> ListType {
        let Some((&last, parents)) = path.split_last() else {
            return ListType::Atomic;
        };
        let parent = parents.last().copied().unwrap_or("");
        let keys: &[&str] = match (parent, last) {
            ("metadata", "ownerReferences") => &["uid"],
            ("metadata", "finalizers") => return ListType::Set,
            (_, "containers" | "initContainers" | "ephemeralContainers") => &["name"],
            ("containers" | "initContainers" | "ephemeralContainers", "ports") => {
                &["containerPort", "protocol"]
            }
            ("spec", "ports") => &["port", "protocol"],
            (_, "env") => &["name"],
            (_, "volumes") => &["name"],
            (_, "volumeMounts") => &["mountPath"],
            (_, "volumeDevices") => &["devicePath"],
            (_, "imagePullSecrets") => &["name"],
            (_, "hostAliases") => &["ip"],
            (_, "conditions") => &["type"],
            (_, "resourceClaims" | "resourceClaimStatuses" | "schedulingGates" | "webhooks") => &["name"],
            ("status", "podIPs" | "hostIPs") => &["ip"],
            ("status", "addresses") => &["type"],
            (_, "topologySpreadConstraints") => &["topologyKey", "whenUnsatisfiable"],
            (_, "secrets") if parents.is_empty() => &["name"],
            _ => return ListType::Atomic,
        };
        ListType::Map(keys.iter().map(|k| k.to_string()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_merge_keys_follow_the_go_types() {
        let s = BuiltinStructure;
        assert_eq!(
            s.list_type(&["spec", "template", "spec", "containers"]),
            ListType::Map(vec!["name".into()])
        );
        assert_eq!(
            s.list_type(&["spec", "template", "spec", "containers", "ports"]),
            ListType::Map(vec!["containerPort".into(), "protocol".into()])
        );
        assert_eq!(
            s.list_type(&["spec", "ports"]),
            ListType::Map(vec!["port".into(), "protocol".into()])
        );
        assert_eq!(s.list_type(&["metadata", "finalizers"]), ListType::Set);
        assert_eq!(
            s.list_type(&["spec", "template", "spec", "tolerations"]),
            ListType::Atomic
        );
    }
}

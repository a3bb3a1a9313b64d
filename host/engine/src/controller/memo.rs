//! The result cache: a reconcile whose snapshot is the one the plugin last answered successfully
//! for the same key is not run again (no guest call, no write).
//!
//! Reconcilers are pure functions of their snapshot (the contract says so: a plugin has no clock,
//! network, filesystem or randomness), and the host made the last answer true. So the answer to an
//! identical snapshot is known, and already applied. This is what makes a resync of unchanged
//! objects cost a hash per object instead of a guest call and a diff of every child.
//!
//! The snapshot's identity is its [`Fingerprint`]: a hash over the `uid` and `resourceVersion` of
//! every object it is built from (the primary object, its children, each lookup's results, in the
//! order the snapshot lists them). The API server changes an object's `resourceVersion` on every
//! write, so equal fingerprints mean equal snapshots, without serialising anything. `reason` and
//! `attempt` are not part of it: they say why the host calls, not what the plugin sees.
//!
//! An answer is remembered only when everything it asked for shows in the next snapshot, so that
//! drift is seen there: children (they are in the snapshot), the primary object's status, patches
//! and deletions of the primary object itself. An answer that patched or deleted other objects, or
//! a reconcile during which the plugin read the host's cache (what it read is not in the
//! fingerprint), is never remembered; nor, of course, is a failure. An answer asking to be called
//! again (`requeueAfterSeconds`) is not remembered either: the plugin said it wants the call. A
//! plugin whose settings turn `cache_results` off is always called.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use wasmop_contract::{Desired, Gvk, ObjectKey, ObjectRef};

use crate::object::CachedObject;

/// The identity of a snapshot's content (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint(u64);

/// Builds a [`Fingerprint`] from the snapshot's objects, in snapshot order.
#[derive(Default)]
pub(crate) struct FingerprintBuilder(DefaultHasher);

impl FingerprintBuilder {
    pub(crate) fn object(&mut self, obj: &CachedObject) {
        obj.metadata.uid.hash(&mut self.0);
        obj.metadata.resource_version.hash(&mut self.0);
    }

    /// Separates the snapshot's parts (children, then each lookup), so that an object moving from
    /// one to the next changes the fingerprint.
    pub(crate) fn part(&mut self) {
        0xff_u8.hash(&mut self.0);
    }

    pub(crate) fn finish(self) -> Fingerprint {
        Fingerprint(self.0.finish())
    }
}

/// The fingerprint of the snapshot each key's last remembered answer was given for.
#[derive(Debug, Default)]
pub(crate) struct Memo {
    entries: Mutex<HashMap<ObjectKey, Fingerprint>>,
}

impl Memo {
    /// Whether the plugin already answered this very snapshot for `key` (and its answer is true).
    pub(crate) fn hit(&self, key: &ObjectKey, fingerprint: Fingerprint) -> bool {
        self.entries.lock().expect("memo lock").get(key) == Some(&fingerprint)
    }

    /// Remembers a successful answer to the snapshot `fingerprint`, if the next snapshot would show
    /// all it asked for (see the module docs); forgets the key's previous answer otherwise.
    pub(crate) fn remember(
        &self,
        key: &ObjectKey,
        primary: &Gvk,
        fingerprint: Fingerprint,
        desired: &Desired,
        read_cache: bool,
    ) {
        let mut entries = self.entries.lock().expect("memo lock");
        if read_cache
            || desired.requeue_after_seconds.is_some()
            || !visible_in_snapshot(key, primary, desired)
        {
            entries.remove(key);
            return;
        }
        entries.insert(key.clone(), fingerprint);
    }

    pub(crate) fn forget(&self, key: &ObjectKey) {
        self.entries.lock().expect("memo lock").remove(key);
    }

    /// Forgets everything (new plugin code answers differently).
    pub(crate) fn clear(&self) {
        self.entries.lock().expect("memo lock").clear();
    }
}

/// Whether every write `desired` asks for shows in the primary object or its children.
fn visible_in_snapshot(key: &ObjectKey, primary: &Gvk, desired: &Desired) -> bool {
    let is_primary = |r: &ObjectRef| {
        r.kind == *primary && r.name == key.name && r.namespace.as_deref() == key.namespace.as_deref()
    };
    desired.patches.iter().all(|p| is_primary(&p.target)) && desired.deletions.iter().all(is_primary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasmop_contract::{Patch, PatchType};

    fn obj(uid: &str, rv: &str) -> CachedObject {
        let store = crate::store::KindStore::for_kind(&Gvk::new("", "v1", "ConfigMap"), true);
        let o = serde_json::from_value(json!({"metadata": {"name": uid, "uid": uid, "resourceVersion": rv}}))
            .unwrap();
        CachedObject::new(o, &store.resource)
    }

    fn fp(parts: &[&[(&str, &str)]]) -> Fingerprint {
        let mut b = FingerprintBuilder::default();
        for part in parts {
            for (uid, rv) in *part {
                b.object(&obj(uid, rv));
            }
            b.part();
        }
        b.finish()
    }

    #[test]
    fn a_fingerprint_changes_with_any_object_version_and_with_the_parts() {
        let base = fp(&[&[("p", "1")], &[("c", "2")]]);
        assert_eq!(base, fp(&[&[("p", "1")], &[("c", "2")]]));
        assert_ne!(base, fp(&[&[("p", "2")], &[("c", "2")]]));
        assert_ne!(base, fp(&[&[("p", "1")], &[("c", "3")]]));
        assert_ne!(base, fp(&[&[("p", "1")], &[]]));
        assert_ne!(base, fp(&[&[("p", "1"), ("c", "2")], &[]]));
    }

    #[test]
    fn only_answers_whose_effects_show_in_the_snapshot_are_remembered() {
        let memo = Memo::default();
        let key = ObjectKey::new(Some("ns"), "web");
        let primary = Gvk::new("apps", "v1", "Deployment");
        let f = fp(&[&[("p", "1")]]);

        memo.remember(&key, &primary, f, &Desired::new(), false);
        assert!(memo.hit(&key, f));
        assert!(!memo.hit(&key, fp(&[&[("p", "2")]])), "another snapshot");

        // The plugin read the cache: what it read is not in the fingerprint.
        memo.remember(&key, &primary, f, &Desired::new(), true);
        assert!(!memo.hit(&key, f));
        // It asked to be called again.
        memo.remember(
            &key,
            &primary,
            f,
            &Desired::new().requeue_after_seconds(30),
            false,
        );
        assert!(!memo.hit(&key, f));

        // A patch of the primary object shows in its next version; one of another object does not.
        let own = ObjectRef::new(primary.clone(), Some("ns"), "web");
        let other = ObjectRef::new(Gvk::new("", "v1", "Secret"), Some("ns"), "db");
        let patch = |target| Patch {
            target,
            patch_type: PatchType::Merge,
            body: json!({"metadata": {"labels": {"a": "b"}}}),
        };
        let mut d = Desired::new();
        d.patches.push(patch(own.clone()));
        memo.remember(&key, &primary, f, &d, false);
        assert!(memo.hit(&key, f));
        d.patches.push(patch(other.clone()));
        memo.remember(&key, &primary, f, &d, false);
        assert!(!memo.hit(&key, f));
        let mut d = Desired::new();
        d.deletions.push(other);
        memo.remember(&key, &primary, f, &d, false);
        assert!(!memo.hit(&key, f));

        memo.remember(&key, &primary, f, &Desired::new(), false);
        memo.forget(&key);
        assert!(!memo.hit(&key, f));
    }
}

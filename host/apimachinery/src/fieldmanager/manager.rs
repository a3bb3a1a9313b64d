//! [`FieldManager`]: the two operations on field ownership, [`FieldManager::update`] (create, PUT,
//! non-apply PATCH) and [`FieldManager::apply`] (server-side apply: merge, pruning of dropped
//! fields, conflicts, force). Like structured-merge-diff's `merge.Updater` together with the
//! apiserver's field-manager chain (stripping metadata, capping updaters).

use std::fmt;

use serde_json::{Map, Value};

use super::managed::{Identity, cap_update_managers, dedupe};
use super::walk::Walker;
use super::{
    ApplyError, Conflict, FieldManagerError, FieldSet, ManagedFieldsEntry, Operation, PathElement,
    path_to_string, sort_managed_fields,
};
use crate::structure::Structure;

/// The fields never tracked for the writing manager (the apiserver's `stripMetaManager`, plus
/// `deletionTimestamp`/`deletionGracePeriodSeconds`, which only deletion sets). `generateName` and
/// labels/annotations are ordinary fields (cm-10 records `f:generateName`).
fn strip_set() -> FieldSet {
    let mut set = FieldSet::from_field_paths(&[&["apiVersion"], &["kind"], &["metadata"]]);
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        set.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field(name.into()),
        ]);
    }
    set
}

fn without_managed_fields(obj: Option<&Value>) -> Value {
    let mut v = obj.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
    }
    v
}

/// Who writes, how, and when: the parameters shared by [`FieldManager::update`] and
/// [`FieldManager::apply`].
pub struct FieldManager<'a> {
    /// How the kind's lists merge.
    pub structure: &'a dyn Structure,
    /// The field manager's name.
    pub manager: &'a str,
    /// The API version of the request (`v1`, `example.com/v1`).
    pub api_version: &'a str,
    /// `Some("status")` for writes through `/status`: recorded as `subresource` on the entry.
    pub subresource: Option<&'a str>,
    /// Fields the write may not own, because the strategy resets them (`resetFields`): e.g. `status`
    /// for a main-resource write of a kind with a status subresource, `apiVersion`/`kind`/`metadata`/
    /// `spec` for a custom resource's status write. Changes there neither give ownership nor conflict.
    pub reset: FieldSet,
    /// The time of the write, RFC 3339 with `Z` (`2026-11-22T07:14:17Z`).
    pub now: &'a str,
}

/// The result of a successful server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    /// The merged object without `metadata.managedFields` (write them with
    /// [`set_managed_fields`](super::set_managed_fields)).
    /// When nothing changed, this is the live object.
    pub object: Value,
    /// The managers afterwards, sorted.
    pub managed: Vec<ManagedFieldsEntry>,
    /// Whether the object changed (changes under reset fields do not count): when false and
    /// `managed` equals the stored list, the apply is a no-op and nothing must be written (rule 21).
    pub changed: bool,
}

impl<'a> FieldManager<'a> {
    /// A manager writing the main resource, resetting nothing.
    pub fn new(structure: &'a dyn Structure, manager: &'a str, api_version: &'a str, now: &'a str) -> Self {
        FieldManager {
            structure,
            manager,
            api_version,
            subresource: None,
            reset: FieldSet::new(),
            now,
        }
    }

    fn walker(&self) -> Walker<'a> {
        Walker { s: self.structure }
    }

    /// Ownership after an Update (create, PUT, or a JSON / merge / strategic patch): `before` is the
    /// stored object (`None` on create: the empty object), `after` the object about to be stored.
    /// The writer takes every field it added or changed away from the other managers, removed fields
    /// leave every manager, managers left with nothing disappear, and the writer's entry is stamped
    /// with `now` only when it gained something, so a no-op write leaves the list untouched.
    ///
    /// `managed` is usually [`managed_fields_for_update`](super::managed_fields_for_update). The result
    /// is sorted. If the objects do not fit the structure (a list-map item without its key) the result
    /// is empty, as the real server drops managedFields when it cannot compute them; such objects fail
    /// validation anyway.
    pub fn update(
        &self,
        before: Option<&Value>,
        after: &Value,
        managed: Vec<ManagedFieldsEntry>,
    ) -> Vec<ManagedFieldsEntry> {
        self.try_update(before, after, managed).unwrap_or_default()
    }

    fn try_update(
        &self,
        before: Option<&Value>,
        after: &Value,
        managed: Vec<ManagedFieldsEntry>,
    ) -> Result<Vec<ManagedFieldsEntry>, FieldManagerError> {
        let walker = self.walker();
        let before = without_managed_fields(before);
        let after = without_managed_fields(Some(after));
        let mut cmp = walker.compare_root(&before, &after)?;
        cmp.exclude(&self.reset);
        let changed = cmp.modified.union(&cmp.added);

        let mut managers = dedupe(managed);
        for entry in &mut managers {
            entry.fields = entry.fields.difference(&changed).difference(&cmp.removed);
        }
        managers.retain(|e| !e.fields.is_empty());

        let mine = changed
            .difference(&cmp.removed)
            .recursive_difference(&self.reset)
            .difference(&strip_set());
        if !mine.is_empty() {
            let id = Identity::new(
                self.manager,
                Operation::Update,
                self.api_version,
                self.subresource,
            );
            match managers.iter_mut().find(|e| e.identity() == id) {
                Some(entry) => {
                    entry.fields = mine.union(&entry.fields);
                    entry.time = Some(self.now.to_string());
                }
                None => managers.push(ManagedFieldsEntry {
                    manager: self.manager.to_string(),
                    operation: Operation::Update,
                    api_version: self.api_version.to_string(),
                    time: Some(self.now.to_string()),
                    fields: mine,
                    subresource: self.subresource.map(str::to_string),
                }),
            }
        }
        cap_update_managers(&mut managers);
        sort_managed_fields(&mut managers);
        Ok(managers)
    }

    /// Server-side apply of `applied` onto `live` (`None`: the object does not exist and is created
    /// from the configuration). `managed` is the live object's list
    /// ([`decode_managed_fields`](super::decode_managed_fields)).
    ///
    /// The configuration is merged into the live object; fields this manager applied last time and
    /// leaves out now are removed unless another manager owns them; the manager then owns exactly
    /// what it applied. Changing a field another manager owns is a conflict unless `force`, which
    /// takes the field from them. The caller still resets strategy-owned fields (`status` on the
    /// main resource, everything but `status` on `/status`) in the returned object.
    pub fn apply(
        &self,
        live: Option<&Value>,
        applied: &Value,
        managed: Vec<ManagedFieldsEntry>,
        force: bool,
    ) -> Result<ApplyOutcome, ApplyError> {
        if !applied.is_object() {
            return Err(ApplyError::Invalid(
                "the applied configuration must be an object".into(),
            ));
        }
        if applied
            .pointer("/metadata/managedFields")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApplyError::ManagedFieldsInConfig);
        }
        let walker = self.walker();
        let live = without_managed_fields(live);
        let applied_set = walker.field_set(applied, true)?.recursive_difference(&self.reset);
        let merged = walker.merge_root(&live, applied)?;

        let id = Identity::new(self.manager, Operation::Apply, self.api_version, self.subresource);
        let mut managers = dedupe(managed);
        sort_managed_fields(&mut managers);
        let last = managers
            .iter()
            .find(|e| e.identity() == id)
            .map(|e| e.fields.clone());
        match managers.iter_mut().find(|e| e.identity() == id) {
            Some(entry) => {
                entry.fields = applied_set;
                entry.api_version = self.api_version.to_string();
            }
            None => managers.push(ManagedFieldsEntry {
                manager: self.manager.to_string(),
                operation: Operation::Apply,
                api_version: self.api_version.to_string(),
                time: None,
                fields: applied_set,
                subresource: self.subresource.map(str::to_string),
            }),
        }

        let (compared, object) = walker.prune(&merged, &managers, last.as_ref())?;
        let mut cmp = walker.compare_root(&live, &compared)?;
        cmp.exclude(&self.reset);
        let changed_fields = cmp.modified.union(&cmp.added);

        let mut conflicts = Vec::new();
        for entry in managers.iter().filter(|e| e.identity() != id) {
            let taken = entry.fields.intersection(&changed_fields);
            taken.walk_paths(&mut Vec::new(), &mut |path| {
                conflicts.push(Conflict {
                    manager: entry.manager.clone(),
                    operation: entry.operation,
                    api_version: entry.api_version.clone(),
                    subresource: entry.subresource.clone(),
                    field: path_to_string(path),
                })
            });
        }
        if !force && !conflicts.is_empty() {
            return Err(ApplyError::Conflicts(conflicts));
        }
        for entry in managers.iter_mut().filter(|e| e.identity() != id) {
            entry.fields = entry.fields.difference(&changed_fields).difference(&cmp.removed);
        }
        let strip = strip_set();
        let changed = !cmp.is_same();
        for entry in managers.iter_mut().filter(|e| e.identity() == id) {
            entry.fields = entry.fields.difference(&strip);
            if changed {
                entry.time = Some(self.now.to_string());
            }
        }
        managers.retain(|e| !e.fields.is_empty());
        cap_update_managers(&mut managers);
        sort_managed_fields(&mut managers);
        Ok(ApplyOutcome {
            object: if changed { object } else { live },
            managed: managers,
            changed,
        })
    }
}

impl fmt::Debug for FieldManager<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldManager")
            .field("manager", &self.manager)
            .field("api_version", &self.api_version)
            .field("subresource", &self.subresource)
            .field("reset", &self.reset)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fieldmanager::testdata::*;
    use crate::fieldmanager::{decode_managed_fields, managed_fields_for_update, set_managed_fields};
    use crate::structure::BuiltinStructure;

    #[test]
    fn configmap_sequence_matches_the_recordings() {
        let s = BuiltinStructure;
        // cm-01: POST by the User-Agent's manager.
        let created = j(
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"meta-cm","namespace":"ref","uid":"e656b328-5b16-4579-a754-249500e95450","resourceVersion":"646","creationTimestamp":"2026-11-22T07:14:17Z","labels":{"app":"x"}},"data":{"a":"1","b":"2"}}"#,
        );
        let fm = FieldManager::new(&s, "k8s-reference-recorder", "v1", "2026-11-22T07:14:17Z");
        let m1 = fm.update(None, &created, managed_fields_for_update(&created, None, false));
        assert_managed(&m1, CM01);
        let cm1 = stored(&created, &m1);

        // cm-02: PUT by editor, the body without managedFields: editor takes a and c.
        let put = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref","resourceVersion":"646","labels":{"app":"x"}},"data":{"a":"10","b":"2","c":"3"}}"#,
        );
        let mut after = put.clone();
        after["metadata"]["uid"] = cm1["metadata"]["uid"].clone();
        after["metadata"]["creationTimestamp"] = cm1["metadata"]["creationTimestamp"].clone();
        let fm = FieldManager::new(&s, "editor", "v1", "2026-11-22T07:14:31Z");
        let m2 = fm.update(
            Some(&cm1),
            &after,
            managed_fields_for_update(&put, Some(&cm1), false),
        );
        assert_managed(&m2, CM02);
        let cm2 = stored(&after, &m2);

        // cm-03: applier-one applies a (same value: co-owned) and d.
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref"},"data":{"a":"10","d":"4"}}"#,
        );
        let fm = FieldManager::new(&s, "applier-one", "v1", "2026-11-22T07:14:32Z");
        let out = fm
            .apply(Some(&cm2), &config, decode_managed_fields(&cm2).unwrap(), false)
            .unwrap();
        assert!(out.changed);
        assert_eq!(
            out.object["data"],
            json!({"a": "10", "b": "2", "c": "3", "d": "4"})
        );
        assert_managed(&out.managed, CM03);
        let cm3 = stored(&out.object, &out.managed);

        // cm-04: applier-two owns e and a label.
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref","labels":{"tier":"two"}},"data":{"e":"5"}}"#,
        );
        let fm = FieldManager::new(&s, "applier-two", "v1", "2026-11-22T07:14:33Z");
        let out = fm
            .apply(Some(&cm3), &config, decode_managed_fields(&cm3).unwrap(), false)
            .unwrap();
        assert_eq!(
            out.object["metadata"]["labels"],
            json!({"app": "x", "tier": "two"})
        );
        assert_managed(&out.managed, CM04);
        let cm4 = stored(&out.object, &out.managed);

        // cm-05: applier-one drops d, which only it owned: d disappears; a stays (editor owns it too).
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref"},"data":{"a":"10"}}"#,
        );
        let fm = FieldManager::new(&s, "applier-one", "v1", "2026-11-22T07:14:34Z");
        let out = fm
            .apply(Some(&cm4), &config, decode_managed_fields(&cm4).unwrap(), false)
            .unwrap();
        assert_eq!(
            out.object["data"],
            json!({"a": "10", "b": "2", "c": "3", "e": "5"})
        );
        assert_managed(&out.managed, CM05);
        let cm5 = stored(&out.object, &out.managed);

        // cm-06: applier-two sets a to another value: 409 with one cause per manager.
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref","labels":{"tier":"two"}},"data":{"e":"5","a":"99"}}"#,
        );
        let fm = FieldManager::new(&s, "applier-two", "v1", "2026-11-22T07:14:35Z");
        let err = fm
            .apply(Some(&cm5), &config, decode_managed_fields(&cm5).unwrap(), false)
            .unwrap_err();
        let expected = j(CM06_STATUS);
        assert_eq!(err.to_string(), expected["message"]);
        assert_eq!(Value::Array(err.causes()), expected["causes"]);

        // cm-07: the same with force: applier-two takes a; applier-one is left with nothing.
        let fm = FieldManager::new(&s, "applier-two", "v1", "2026-11-22T07:14:36Z");
        let out = fm
            .apply(Some(&cm5), &config, decode_managed_fields(&cm5).unwrap(), true)
            .unwrap();
        assert_eq!(
            out.object["data"],
            json!({"a": "99", "b": "2", "c": "3", "e": "5"})
        );
        assert_managed(&out.managed, CM07);
        let cm7 = stored(&out.object, &out.managed);

        // cm-08: PUT of the unchanged object (no managedFields in the body): nothing changes.
        let mut put = cm7.clone();
        put["metadata"].as_object_mut().unwrap().remove("managedFields");
        let fm = FieldManager::new(&s, "editor", "v1", "2026-11-22T07:14:40Z");
        let m8 = fm.update(
            Some(&cm7),
            &put,
            managed_fields_for_update(&put, Some(&cm7), false),
        );
        assert_eq!(stored(&put, &m8), cm7);

        // cm-09: re-applying the same configuration: unchanged object, unchanged entries and times.
        let fm = FieldManager::new(&s, "applier-two", "v1", "2026-11-22T07:14:41Z");
        let out = fm
            .apply(Some(&cm7), &config, decode_managed_fields(&cm7).unwrap(), true)
            .unwrap();
        assert!(!out.changed);
        assert_eq!(stored(&out.object, &out.managed), cm7);

        // 05-errors/409-ssa-conflict.http: an intruder changing fields of two Update managers.
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref","labels":{"app":"changed"}},"data":{"b":"changed","c":"changed"}}"#,
        );
        let fm = FieldManager::new(&s, "intruder", "v1", "2026-11-22T07:16:00Z");
        let err = fm
            .apply(Some(&cm7), &config, decode_managed_fields(&cm7).unwrap(), false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"editor\" using v1:\n- .data.c\nconflicts with \"k8s-reference-recorder\" using v1:\n- .data.b\n- .metadata.labels.app"
        );
        let fields: Vec<Value> = err.causes().iter().map(|c| c["field"].clone()).collect();
        assert_eq!(
            fields,
            [json!(".data.b"), json!(".metadata.labels.app"), json!(".data.c")]
        );
    }

    #[test]
    fn widget_sequence_matches_the_recordings() {
        let s = WidgetStructure;
        let api = "example.com/v1";
        // widget-01: create.
        let created = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"creationTimestamp":"2026-11-22T07:14:52Z","generation":1,"labels":{"app":"x"},"name":"meta-w","namespace":"ref","resourceVersion":"655","uid":"4625db57-2f5e-41bc-842a-86c8d87b372f"},"spec":{"color":"red","size":1,"tags":["a"]}}"#,
        );
        let m1 = FieldManager::new(&s, "k8s-reference-recorder", api, "2026-11-22T07:14:52Z").update(
            None,
            &created,
            vec![],
        );
        assert_managed(&m1, W01);
        let w1 = stored(&created, &m1);

        // widget-02: PUT by editor (body carries the managedFields it read): size and a new set item.
        let mut put = w1.clone();
        put["spec"]["size"] = json!(2);
        put["spec"]["tags"] = json!(["a", "z"]);
        let fm = FieldManager::new(&s, "editor", api, "2026-11-22T07:15:08Z");
        let m2 = fm.update(Some(&w1), &put, managed_fields_for_update(&put, Some(&w1), false));
        assert_managed(&m2, W02);
        let w2 = stored(&put, &m2);

        // widget-03: PUT adding an annotation.
        let mut put = w2.clone();
        put["metadata"]["annotations"] = json!({"note": "hello"});
        let fm = FieldManager::new(&s, "editor", api, "2026-11-22T07:15:09Z");
        let m3 = fm.update(Some(&w2), &put, managed_fields_for_update(&put, Some(&w2), false));
        assert_managed(&m3, W03);
        let w3 = stored(&put, &m3);

        // widget-04: applier-one co-owns color and a, adds b to the set (appended after live items).
        let config = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"meta-w","namespace":"ref"},"spec":{"color":"red","tags":["a","b"]}}"#,
        );
        let fm = FieldManager::new(&s, "applier-one", api, "2026-11-22T07:15:10Z");
        let out = fm
            .apply(Some(&w3), &config, decode_managed_fields(&w3).unwrap(), false)
            .unwrap();
        assert_eq!(out.object["spec"]["tags"], json!(["a", "z", "b"]));
        assert_managed(&out.managed, W04);
        let w4 = stored(&out.object, &out.managed);

        // widget-05: applier-two owns its own set item.
        let config = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"meta-w","namespace":"ref"},"spec":{"tags":["c"]}}"#,
        );
        let fm = FieldManager::new(&s, "applier-two", api, "2026-11-22T07:15:11Z");
        let out = fm
            .apply(Some(&w4), &config, decode_managed_fields(&w4).unwrap(), false)
            .unwrap();
        assert_eq!(out.object["spec"]["tags"], json!(["a", "z", "b", "c"]));
        assert_managed(&out.managed, W05);
        let w5 = stored(&out.object, &out.managed);

        // widget-06: merge patch on /status also trying to change spec: only status is owned.
        let status_reset =
            FieldSet::from_field_paths(&[&["apiVersion"], &["kind"], &["metadata"], &["spec"]]);
        let mut patched = w5.clone();
        patched["spec"]["size"] = json!(100);
        patched["status"] = json!({"phase": "Running", "observedGeneration": 2});
        let fm = FieldManager {
            subresource: Some("status"),
            reset: status_reset.clone(),
            ..FieldManager::new(&s, "status-controller", api, "2026-11-22T07:15:12Z")
        };
        let m6 = fm.update(
            Some(&w5),
            &patched,
            managed_fields_for_update(&patched, Some(&w5), true),
        );
        assert_managed(&m6, W06);
        patched["spec"] = w5["spec"].clone(); // the status strategy's reset
        let w6 = stored(&patched, &m6);

        // widget-07: server-side apply on /status of a condition: k:{"type":"Ready"}.
        let config = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"meta-w","namespace":"ref"},"status":{"conditions":[{"type":"Ready","status":"True","reason":"Done","message":"ready","lastTransitionTime":"2026-11-22T00:00:00Z"}]}}"#,
        );
        let fm = FieldManager {
            subresource: Some("status"),
            reset: status_reset,
            ..FieldManager::new(&s, "status-applier", api, "2026-11-22T07:15:13Z")
        };
        let out = fm
            .apply(Some(&w6), &config, decode_managed_fields(&w6).unwrap(), false)
            .unwrap();
        assert_eq!(out.object["status"]["phase"], json!("Running"));
        assert_eq!(out.object["status"]["conditions"][0]["type"], json!("Ready"));
        assert_managed(&out.managed, W07);
        let w7 = stored(&out.object, &out.managed);

        // widget-08: main-resource PUT changing status (ignored) and adding a label.
        let mut put = w7.clone();
        put["status"]["phase"] = json!("Hacked");
        put["metadata"]["labels"]["extra"] = json!("1");
        let fm = FieldManager {
            reset: FieldSet::from_field_paths(&[&["status"]]),
            ..FieldManager::new(&s, "editor", api, "2026-11-22T07:15:14Z")
        };
        let m8 = fm.update(Some(&w7), &put, managed_fields_for_update(&put, Some(&w7), false));
        assert_managed(&m8, W09);

        // 05-errors/409-ssa-conflict-crd-object.http: conflicts with an Apply and two Update managers.
        put["status"]["phase"] = json!("Running");
        let w8 = stored(&put, &m8);
        let config = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"meta-w","namespace":"ref"},"spec":{"size":9,"color":"green"}}"#,
        );
        let fm = FieldManager::new(&s, "intruder", api, "2026-11-22T07:16:00Z");
        let err = fm
            .apply(Some(&w8), &config, decode_managed_fields(&w8).unwrap(), false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"applier-one\":\n- .spec.color\nconflicts with \"editor\" using example.com/v1:\n- .spec.size\nconflicts with \"k8s-reference-recorder\" using example.com/v1:\n- .spec.color"
        );
        assert_eq!(
            Value::Array(err.causes()),
            json!([
                {"reason": "FieldManagerConflict", "message": "conflict with \"applier-one\"", "field": ".spec.color"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"k8s-reference-recorder\" using example.com/v1", "field": ".spec.color"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"editor\" using example.com/v1", "field": ".spec.size"}
            ])
        );
    }

    #[test]
    fn apply_to_a_missing_object_creates_it() {
        // 08-patch/18-ssa-create-if-missing.http
        let config =
            j(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa-created"},"data":{"k":"v"}}"#);
        let fm = FieldManager::new(&BuiltinStructure, "me", "v1", "2026-11-22T07:23:46Z");
        let out = fm.apply(None, &config, vec![], false).unwrap();
        assert!(out.changed);
        assert_eq!(out.object, config);
        assert_managed(
            &out.managed,
            r#"[{"manager":"me","operation":"Apply","apiVersion":"v1","time":"2026-11-22T07:23:46Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:k":{}}}}]"#,
        );
    }

    #[test]
    fn create_with_owner_references_and_finalizers() {
        // 07-deletion/foreground-slow-01-create-dependent.http
        let created = j(
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"dep-slow","namespace":"del","uid":"537f5a8b-40d5-496b-a157-9698281fc5c0","resourceVersion":"750","creationTimestamp":"2026-11-22T07:21:29Z","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner-slow","uid":"fb5ccb62-875d-491f-bb14-9744b9d6fd58","blockOwnerDeletion":true}],"finalizers":["example.com/hold"]},"data":{"role":"dependent"}}"#,
        );
        let fm = FieldManager::new(
            &BuiltinStructure,
            "k8s-reference-recorder",
            "v1",
            "2026-11-22T07:21:29Z",
        );
        let managed = fm.update(None, &created, vec![]);
        assert_managed(&managed, FOREGROUND_DEPENDENT);

        // Deletion sets deletionTimestamp: never tracked, so an update recording it changes nothing.
        let live = stored(&created, &managed);
        let mut terminating = live.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2026-11-22T07:21:30Z");
        terminating["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        let fm = FieldManager::new(&BuiltinStructure, "kube-apiserver", "v1", "2026-11-22T07:21:30Z");
        assert_eq!(fm.update(Some(&live), &terminating, managed.clone()), managed);
    }

    #[test]
    fn removal_gives_no_ownership_and_empties_managed_fields() {
        // 07-deletion/orphan-02-get-dependent.http: the GC strips ownerReferences, the creator's only
        // field, so no manager is left and the key disappears.
        let created = j(
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"dep-or","namespace":"del","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner-or","uid":"u-1"}]}}"#,
        );
        let creator = FieldManager::new(
            &BuiltinStructure,
            "k8s-reference-recorder",
            "v1",
            "2026-11-22T07:21:53Z",
        );
        let managed = creator.update(None, &created, vec![]);
        let live = stored(&created, &managed);
        let mut orphaned = live.clone();
        orphaned["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        let gc = FieldManager::new(
            &BuiltinStructure,
            "kube-controller-manager",
            "v1",
            "2026-11-22T07:21:54Z",
        );
        let after = gc.update(Some(&live), &orphaned, decode_managed_fields(&live).unwrap());
        assert!(after.is_empty());
        set_managed_fields(&mut orphaned, &after);
        assert!(orphaned["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn apply_rejects_bad_configurations() {
        let fm = FieldManager::new(&BuiltinStructure, "m", "v1", "2026-01-01T00:00:00Z");
        let with_managed = json!({"metadata": {"name": "x", "managedFields": []}});
        assert_eq!(
            fm.apply(None, &with_managed, vec![], false),
            Err(ApplyError::ManagedFieldsInConfig)
        );
        assert_eq!(
            ApplyError::ManagedFieldsInConfig.to_string(),
            "metadata.managedFields must be nil"
        );
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        let err = fm.apply(None, &dup, vec![], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".spec.containers: duplicate entries for key [name=\"a\"]"
        );
        let keyless = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(matches!(
            fm.apply(None, &keyless, vec![], false),
            Err(ApplyError::Invalid(_))
        ));
        assert!(matches!(
            fm.apply(None, &json!([1]), vec![], false),
            Err(ApplyError::Invalid(_))
        ));
        // Update never fails: an object that does not fit is recorded as nobody's, like the real server.
        assert!(fm.update(None, &keyless, vec![]).is_empty());
    }

    #[test]
    fn first_apply_that_changes_nothing_has_no_time() {
        let s = BuiltinStructure;
        let live =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
        let managed =
            FieldManager::new(&s, "creator", "v1", "2026-01-01T00:00:00Z").update(None, &live, vec![]);
        let live = stored(&live, &managed);
        let fm = FieldManager::new(&s, "late", "v1", "2026-01-01T00:00:05Z");
        let config =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
        let out = fm
            .apply(Some(&live), &config, decode_managed_fields(&live).unwrap(), false)
            .unwrap();
        assert!(!out.changed);
        assert_eq!(out.managed[0].manager, "late");
        assert_eq!(out.managed[0].time, None);
        assert_eq!(out.managed[1].manager, "creator");
    }
}

//! RBAC enforced by the embedded API server (`Config::rbac`, `wasmop apiserver --rbac`): kube-rs
//! clients acting as other users (impersonation, ServiceAccount tokens from the TokenRequest API)
//! against Roles, ClusterRoles and their bindings; the 403 body of a real server; `kubectl auth
//! can-i` and `kubectl create token`.

use std::process::{Command, Output};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec, TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{LocalSubjectAccessReview, SubjectAccessReview};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use crate::support::{TestServer, eventually, spawn_wasmop, wasmop};

/// A client for the server with `token` instead of the admin's, impersonating `user` (and
/// `groups`) when given.
async fn client_as(t: &TestServer, token: Option<&str>, user: Option<&str>, groups: &[&str]) -> kube::Client {
    let mut kc = Kubeconfig::from_yaml(&t.server.kubeconfig()).unwrap();
    if let Some(token) = token {
        for u in &mut kc.auth_infos {
            if let Some(info) = u.auth_info.as_mut() {
                info.token = Some(token.to_string().into());
            }
        }
    }
    let mut config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    config.auth_info.impersonate = user.map(String::from);
    if !groups.is_empty() {
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    kube::Client::try_from(config).unwrap()
}

/// Applies objects as the admin (server-side apply, any kind).
async fn apply(t: &TestServer, docs: &[Value]) {
    for doc in docs {
        let api_version = doc["apiVersion"].as_str().unwrap();
        let kind = doc["kind"].as_str().unwrap();
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
        let (ar, caps) = kube::discovery::pinned_kind(&t.client, &gvk).await.unwrap();
        let name = doc["metadata"]["name"].as_str().unwrap();
        let api: Api<kube::api::DynamicObject> = match doc["metadata"]["namespace"].as_str() {
            Some(ns) if caps.scope == kube::discovery::Scope::Namespaced => {
                Api::namespaced_with(t.client.clone(), ns, &ar)
            }
            _ => Api::all_with(t.client.clone(), &ar),
        };
        api.patch(name, &PatchParams::apply("test").force(), &Patch::Apply(doc))
            .await
            .unwrap_or_else(|e| panic!("applying {kind} {name}: {e}"));
    }
}

fn code<T: std::fmt::Debug>(r: kube::Result<T>) -> u16 {
    match r {
        Ok(_) => 200,
        Err(kube::Error::Api(s)) => s.code,
        Err(e) => panic!("{e}"),
    }
}

fn ns(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn cm(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": {"k": "v"}})
}

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

fn role(ns: &str, name: &str, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name, "namespace": ns}, "rules": rules})
}

fn cluster_role(name: &str, labels: Value, rules: Vec<Value>) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": name, "labels": labels}, "rules": rules})
}

fn binding(ns: Option<&str>, name: &str, role_kind: &str, role: &str, subject: Value) -> Value {
    let mut b = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": if ns.is_some() { "RoleBinding" } else { "ClusterRoleBinding" },
        "metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role}, "subjects": [subject]});
    if let Some(ns) = ns {
        b["metadata"]["namespace"] = ns.into();
    }
    b
}

fn user(name: &str) -> Value {
    json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name})
}

fn deployment(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

#[tokio::test]
async fn rbac_matrix_for_users_groups_and_service_accounts() {
    let t = TestServer::start_with(|c| c.rbac = true).await;
    apply(
        &t,
        &[
            ns("team-a"),
            ns("team-b"),
            cm("team-a", "one"),
            cm("team-b", "one"),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "one", "namespace": "team-a"}, "stringData": {"k": "v"}}),
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "two", "namespace": "team-a"}, "stringData": {"k": "v"}}),
            deployment("team-a", "web"),
            role("team-a", "cm-reader", vec![rule(&["get", "list"], "", &["configmaps"])]),
            role(
                "team-a",
                "secret-one",
                vec![json!({"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["one"]})],
            ),
            binding(Some("team-a"), "jane-cm", "Role", "cm-reader", user("jane")),
            binding(Some("team-a"), "jane-secret", "Role", "secret-one", user("jane")),
            // A RoleBinding to a ClusterRole grants its rules in that namespace only.
            binding(Some("team-b"), "jane-view", "ClusterRole", "view", user("jane")),
            cluster_role(
                "scaler",
                json!({}),
                vec![rule(&["get"], "apps", &["deployments"]), rule(&["get", "patch", "update"], "apps", &["*/scale"])],
            ),
            binding(None, "scalers", "ClusterRole", "scaler", json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "scalers"})),
        ],
    )
    .await;

    let jane = client_as(&t, None, Some("jane"), &[]).await;
    let cms_a: Api<ConfigMap> = Api::namespaced(jane.clone(), "team-a");
    let cms_b: Api<ConfigMap> = Api::namespaced(jane.clone(), "team-b");
    assert_eq!(code(cms_a.get("one").await), 200);
    assert_eq!(code(cms_a.list(&ListParams::default()).await), 200);
    let created: ConfigMap = serde_json::from_value(cm("team-a", "new")).unwrap();
    match cms_a.create(&PostParams::default(), &created).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403);
            assert_eq!(s.reason, "Forbidden");
            assert_eq!(
                s.message,
                "configmaps is forbidden: User \"jane\" cannot create resource \"configmaps\" in API group \"\" in the namespace \"team-a\""
            );
        }
        other => panic!("jane created a ConfigMap: {other:?}"),
    }
    // resourceNames: secret "one" only, and no list.
    let secrets_a: Api<Secret> = Api::namespaced(jane.clone(), "team-a");
    assert_eq!(code(secrets_a.get("one").await), 200);
    assert_eq!(code(secrets_a.get("two").await), 403);
    assert_eq!(code(secrets_a.list(&ListParams::default()).await), 403);
    // team-b through the aggregated `view` ClusterRole: reads, but not secrets nor writes.
    assert_eq!(code(cms_b.list(&ListParams::default()).await), 200);
    assert_eq!(
        code(
            Api::<Deployment>::namespaced(jane.clone(), "team-b")
                .list(&ListParams::default())
                .await
        ),
        200
    );
    assert_eq!(
        code(
            Api::<Secret>::namespaced(jane.clone(), "team-b")
                .list(&ListParams::default())
                .await
        ),
        403
    );
    assert_eq!(code(cms_b.delete("one", &DeleteParams::default()).await), 403);
    // No cluster-wide grant.
    assert_eq!(
        code(
            Api::<ConfigMap>::all(jane.clone())
                .list(&ListParams::default())
                .await
        ),
        403
    );
    // Discovery is open to every authenticated user.
    assert!(kube::Discovery::new(jane.clone()).run().await.is_ok());

    // SubjectAccessReview / LocalSubjectAccessReview answer the same question for someone else.
    let sar = |namespace: &str, verb: &str, resource: &str| {
        serde_json::from_value::<SubjectAccessReview>(json!({"spec": {"user": "jane",
            "resourceAttributes": {"namespace": namespace, "verb": verb, "resource": resource}}}))
        .unwrap()
    };
    let sars: Api<SubjectAccessReview> = Api::all(t.client.clone());
    let status = sars
        .create(&PostParams::default(), &sar("team-a", "list", "configmaps"))
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(status.allowed);
    assert_eq!(
        status.reason.as_deref(),
        Some("RBAC: allowed by RoleBinding \"jane-cm/team-a\" of Role \"cm-reader\" to User \"jane\"")
    );
    let lsars: Api<LocalSubjectAccessReview> = Api::namespaced(t.client.clone(), "team-b");
    let local: LocalSubjectAccessReview = serde_json::from_value(json!({"spec": {"user": "jane",
        "resourceAttributes": {"namespace": "team-b", "verb": "get", "resource": "secrets"}}}))
    .unwrap();
    let status = lsars
        .create(&PostParams::default(), &local)
        .await
        .unwrap()
        .status
        .unwrap();
    assert!(!status.allowed);

    // A group bound through a ClusterRoleBinding: `*/scale` but not the deployment itself.
    let bob = client_as(&t, None, Some("bob"), &["scalers"]).await;
    let deploys: Api<Deployment> = Api::namespaced(bob.clone(), "team-a");
    assert_eq!(code(deploys.get("web").await), 200);
    let scale = json!({"spec": {"replicas": 3}});
    assert_eq!(
        code(
            deploys
                .patch_scale("web", &PatchParams::default(), &Patch::Merge(&scale))
                .await
        ),
        200
    );
    assert_eq!(
        code(
            deploys
                .patch("web", &PatchParams::default(), &Patch::Merge(&scale))
                .await
        ),
        403
    );
    assert_eq!(
        code(
            deploys
                .patch_status("web", &PatchParams::default(), &Patch::Merge(&json!({})))
                .await
        ),
        403
    );

    // system:masters may do anything without a binding of its own.
    let root = client_as(&t, None, Some("root"), &["system:masters"]).await;
    assert_eq!(
        code(Api::<Secret>::all(root).list(&ListParams::default()).await),
        200
    );

    // A ServiceAccount token from the TokenRequest API, bound to `edit` in team-a.
    apply(
        &t,
        &[
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot", "namespace": "team-a"}}),
            binding(Some("team-a"), "bot-edit", "ClusterRole", "edit", json!({"kind": "ServiceAccount", "name": "bot", "namespace": "team-a"})),
        ],
    )
    .await;
    let sas: Api<ServiceAccount> = Api::namespaced(t.client.clone(), "team-a");
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let tr = sas
        .create_token_request("bot", &PostParams::default(), &tr)
        .await
        .unwrap();
    let token = tr.status.unwrap().token;
    let bot = client_as(&t, Some(&token), None, &[]).await;
    let bot_cms: Api<ConfigMap> = Api::namespaced(bot.clone(), "team-a");
    let created: ConfigMap = serde_json::from_value(cm("team-a", "by-bot")).unwrap();
    assert_eq!(code(bot_cms.create(&PostParams::default(), &created).await), 200);
    let created_b: ConfigMap = serde_json::from_value(cm("team-b", "by-bot")).unwrap();
    assert_eq!(
        code(
            Api::<ConfigMap>::namespaced(bot.clone(), "team-b")
                .create(&PostParams::default(), &created_b)
                .await
        ),
        403
    );
    let roles: Api<kube::api::DynamicObject> = Api::namespaced_with(
        bot.clone(),
        "team-a",
        &kube::api::ApiResource::erase::<k8s_openapi::api::rbac::v1::Role>(&()),
    );
    assert_eq!(
        code(roles.list(&ListParams::default()).await),
        403,
        "edit does not include roles"
    );

    // Aggregation at evaluation time: a new ClusterRole labelled aggregate-to-view reaches
    // view, edit (which aggregates view) and so the bot.
    let events_ar = kube::api::ApiResource::erase::<k8s_openapi::api::events::v1::Event>(&());
    let events: Api<kube::api::DynamicObject> = Api::namespaced_with(bot.clone(), "team-a", &events_ar);
    assert_eq!(code(events.list(&ListParams::default()).await), 403);
    apply(
        &t,
        &[cluster_role(
            "events-viewer",
            json!({"rbac.authorization.k8s.io/aggregate-to-view": "true"}),
            vec![rule(&["get", "list", "watch"], "events.k8s.io", &["events"])],
        )],
    )
    .await;
    assert_eq!(code(events.list(&ListParams::default()).await), 200);

    // TokenReview: who the token is, for the default audience only.
    let reviews: Api<TokenReview> = Api::all(t.client.clone());
    let review = |token: &str, audiences: Option<Vec<String>>| TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences,
        },
        ..Default::default()
    };
    let r = reviews
        .create(&PostParams::default(), &review(&token, None))
        .await
        .unwrap();
    let status = r.status.unwrap();
    assert_eq!(status.authenticated, Some(true));
    let who = status.user.unwrap();
    assert_eq!(who.username.as_deref(), Some("system:serviceaccount:team-a:bot"));
    assert_eq!(
        who.groups.unwrap(),
        [
            "system:serviceaccounts",
            "system:serviceaccounts:team-a",
            "system:authenticated"
        ]
    );
    let r = reviews
        .create(
            &PostParams::default(),
            &review(&token, Some(vec!["vault".into()])),
        )
        .await
        .unwrap();
    assert_ne!(r.status.unwrap().authenticated, Some(true));

    // Escalation prevention: a namespace admin may grant what `admin` holds, nothing more.
    apply(
        &t,
        &[binding(
            Some("team-a"),
            "lead-admin",
            "ClusterRole",
            "admin",
            user("lead"),
        )],
    )
    .await;
    let lead = client_as(&t, None, Some("lead"), &[]).await;
    let role_ar = kube::api::ApiResource::erase::<k8s_openapi::api::rbac::v1::Role>(&());
    let binding_ar = kube::api::ApiResource::erase::<k8s_openapi::api::rbac::v1::RoleBinding>(&());
    let lead_roles: Api<kube::api::DynamicObject> = Api::namespaced_with(lead.clone(), "team-a", &role_ar);
    let lead_bindings: Api<kube::api::DynamicObject> =
        Api::namespaced_with(lead.clone(), "team-a", &binding_ar);
    let dynamic = |v: Value| serde_json::from_value::<kube::api::DynamicObject>(v).unwrap();
    let pp = PostParams::default();
    let ok_role = role(
        "team-a",
        "cm-writer",
        vec![rule(&["get", "create"], "", &["configmaps"])],
    );
    assert_eq!(code(lead_roles.create(&pp, &dynamic(ok_role)).await), 200);
    let big_role = role("team-a", "node-admin", vec![rule(&["delete"], "", &["nodes"])]);
    match lead_roles.create(&pp, &dynamic(big_role)).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 403);
            assert!(
                s.message.starts_with("roles.rbac.authorization.k8s.io \"node-admin\" is forbidden: user \"lead\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"nodes\"], Verbs:[\"delete\"]}"),
                "{}",
                s.message
            );
        }
        other => panic!("escalated: {other:?}"),
    }
    let to_view = binding(Some("team-a"), "x-view", "ClusterRole", "view", user("x"));
    assert_eq!(code(lead_bindings.create(&pp, &dynamic(to_view)).await), 200);
    let to_admin = binding(
        Some("team-a"),
        "x-admin",
        "ClusterRole",
        "cluster-admin",
        user("x"),
    );
    assert_eq!(code(lead_bindings.create(&pp, &dynamic(to_admin)).await), 403);

    // The token dies with its ServiceAccount.
    sas.delete("bot", &DeleteParams::default()).await.unwrap();
    assert_eq!(code(bot_cms.list(&ListParams::default()).await), 401);
    t.server.shutdown().await;
}

/// Sends a GET as the admin impersonating `user` (or with no token) and returns status and body.
async fn raw_get(t: &TestServer, user: Option<&str>, path: &str) -> (u16, Value) {
    let client = match user {
        Some(u) => client_as(t, None, Some(u), &[]).await,
        None => {
            let mut kc = Kubeconfig::from_yaml(&t.server.kubeconfig()).unwrap();
            for u in &mut kc.auth_infos {
                if let Some(info) = u.auth_info.as_mut() {
                    info.token = None;
                }
            }
            let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
                .await
                .unwrap();
            kube::Client::try_from(config).unwrap()
        }
    };
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    let resp = client.send(req.map(Into::into)).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect_bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn forbidden_bodies_are_the_recorded_ones() {
    let t = TestServer::start_with(|c| c.rbac = true).await;
    apply(&t, &[ns("ref"), cm("ref", "meta-cm")]).await;
    // 05-errors/403-forbidden-impersonated-user.http
    let (status, body) = raw_get(&t, Some("jane"), "/api/v1/namespaces/ref/configmaps/meta-cm").await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "configmaps \"meta-cm\" is forbidden: User \"jane\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"ref\"",
            "reason": "Forbidden", "details": {"name": "meta-cm", "kind": "configmaps"}, "code": 403})
    );
    // 05-errors/403-no-token-anonymous.http
    let (status, body) = raw_get(&t, None, "/api/v1/namespaces/ref/configmaps").await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "configmaps is forbidden: User \"system:anonymous\" cannot list resource \"configmaps\" in API group \"\" in the namespace \"ref\"",
            "reason": "Forbidden", "details": {"kind": "configmaps"}, "code": 403})
    );
    // Anonymous users still read /version; an unprivileged user may not impersonate.
    assert_eq!(raw_get(&t, None, "/version").await.0, 200);
    apply(
        &t,
        &[
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "bot", "namespace": "ref"}}),
        ],
    )
    .await;
    let sas: Api<ServiceAccount> = Api::namespaced(t.client.clone(), "ref");
    let tr = sas
        .create_token_request("bot", &PostParams::default(), &TokenRequest::default())
        .await
        .unwrap();
    let bot = client_as(&t, Some(&tr.status.unwrap().token), Some("jane"), &[]).await;
    match Api::<ConfigMap>::namespaced(bot, "ref").get("meta-cm").await {
        Err(kube::Error::Api(s)) => assert_eq!(
            s.message,
            "users \"jane\" is forbidden: User \"system:serviceaccount:ref:bot\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
        ),
        other => panic!("impersonation allowed: {other:?}"),
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn default_service_accounts_appear_in_every_namespace() {
    let t = TestServer::start().await;
    apply(&t, &[ns("fresh")]).await;
    for namespace in ["default", "kube-system", "fresh"] {
        let sas: Api<ServiceAccount> = Api::namespaced(t.client.clone(), namespace);
        eventually(10, "the default ServiceAccount", || {
            let sas = sas.clone();
            async move { sas.get_opt("default").await.ok().flatten() }
        })
        .await;
    }
    // Bootstrap roles exist even with RBAC off; the aggregation controller fills admin/edit/view.
    let crs: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(t.client.clone());
    for name in ["cluster-admin", "admin", "edit", "view", "system:discovery"] {
        assert!(crs.get_opt(name).await.unwrap().is_some(), "{name}");
    }
    let grants = |role: k8s_openapi::api::rbac::v1::ClusterRole, verb: &str, resource: &str| {
        role.rules
            .unwrap_or_default()
            .iter()
            .any(|r| r.verbs.iter().any(|v| v == verb) && r.resources.iter().flatten().any(|x| x == resource))
    };
    eventually(10, "aggregated rules in admin", || {
        let crs = crs.clone();
        async move {
            let admin = crs.get("admin").await.ok()?;
            (grants(admin.clone(), "create", "roles") && grants(admin, "list", "configmaps")).then_some(())
        }
    })
    .await;
    let view = crs.get("view").await.unwrap();
    assert!(grants(view.clone(), "list", "configmaps") && !grants(view, "create", "configmaps"));
    t.server.shutdown().await;
}

fn kubectl(kubeconfig: &std::path::Path, cache: &std::path::Path, args: &[&str]) -> Output {
    Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("kubectl runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

const RBAC_MANIFESTS: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: cm-reader, namespace: team-a}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [get, list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: jane-cm, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: cm-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: jane}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: bot-view, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects:
- {kind: ServiceAccount, name: bot, namespace: team-a}
"#;

#[test]
fn kubectl_auth_can_i_and_create_token_against_wasmop_apiserver_rbac() {
    if !Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success())
    {
        eprintln!("kubectl not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut command = wasmop();
    command
        .args(["apiserver", "--rbac", "--port", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("WASMOP_LOG", "warn");
    let (mut child, kubeconfig) = spawn_wasmop(&mut command, "kubeconfig: ");
    let kc = std::path::PathBuf::from(kubeconfig);
    let cache = dir.path().join("cache");
    let run = |args: &[&str]| {
        let out = kubectl(&kc, &cache, args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout(&out)
    };
    run(&["create", "namespace", "team-a"]);
    run(&["create", "serviceaccount", "bot", "-n", "team-a"]);
    let manifests = dir.path().join("rbac.yaml");
    std::fs::write(&manifests, RBAC_MANIFESTS).unwrap();
    run(&["apply", "-f", manifests.to_str().unwrap()]);
    run(&[
        "create",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "--from-literal=k=v",
    ]);

    // kubectl auth can-i: the admin (system:masters), jane through --as.
    assert_eq!(run(&["auth", "can-i", "*", "*"]), "yes");
    assert_eq!(
        run(&[
            "auth",
            "can-i",
            "list",
            "configmaps",
            "-n",
            "team-a",
            "--as",
            "jane"
        ]),
        "yes"
    );
    let no = kubectl(
        &kc,
        &cache,
        &[
            "auth",
            "can-i",
            "create",
            "configmaps",
            "-n",
            "team-a",
            "--as",
            "jane",
        ],
    );
    assert_eq!((no.status.code(), stdout(&no).as_str()), (Some(1), "no"));
    let no = kubectl(
        &kc,
        &cache,
        &[
            "auth",
            "can-i",
            "list",
            "configmaps",
            "-n",
            "default",
            "--as",
            "jane",
        ],
    );
    assert_eq!(stdout(&no), "no");
    assert_eq!(
        run(&[
            "auth",
            "can-i",
            "get",
            "configmaps",
            "-n",
            "team-a",
            "--as",
            "system:serviceaccount:team-a:bot"
        ]),
        "yes"
    );

    let list = run(&["auth", "can-i", "--list", "-n", "team-a", "--as", "jane"]);
    assert!(
        list.lines()
            .any(|l| l.starts_with("configmaps ") && l.contains("[get list]")),
        "{list}"
    );

    // kubectl create token, then use it.
    let token = run(&["create", "token", "bot", "-n", "team-a", "--duration=15m"]);
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let got = run(&[
        "--token",
        &token,
        "get",
        "configmap",
        "settings",
        "-n",
        "team-a",
        "-o",
        "name",
    ]);
    assert_eq!(got, "configmap/settings");
    let whoami = run(&[
        "--token",
        &token,
        "auth",
        "whoami",
        "-o",
        "jsonpath={.status.userInfo.username}",
    ]);
    assert_eq!(whoami, "system:serviceaccount:team-a:bot");
    let denied = kubectl(
        &kc,
        &cache,
        &["--token", &token, "get", "secrets", "-n", "team-a"],
    );
    assert!(!denied.status.success());
    let err = String::from_utf8_lossy(&denied.stderr);
    assert!(
        err.contains("User \"system:serviceaccount:team-a:bot\" cannot list resource \"secrets\" in API group \"\" in the namespace \"team-a\""),
        "{err}"
    );
    assert_eq!(
        stdout(&kubectl(
            &kc,
            &cache,
            &[
                "--token",
                &token,
                "auth",
                "can-i",
                "delete",
                "configmaps",
                "-n",
                "team-a"
            ]
        )),
        "no"
    );
    let _ = child.kill();
    let _ = child.wait();
}

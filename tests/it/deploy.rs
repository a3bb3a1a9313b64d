//! `deploy/`: the committed RBAC is what `wasmop rbac` generates for the example plugins, and the
//! kustomize base renders (`kubectl kustomize`) and applies (`kubectl apply -k`) to the embedded API
//! server, also with an overlay that ships a plugin through the ConfigMap generator.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{spawn_wasmop, wasmop};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn check(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn deploy_rbac_is_generated_from_the_example_plugins() {
    let plugins = wasmop_example_plugins::plugins_dir();
    let out = wasmop().arg("rbac").arg(&plugins).output().unwrap();
    let generated = check("wasmop rbac", &out);
    let committed = std::fs::read_to_string(repo().join("deploy/rbac.yaml")).unwrap();
    assert!(
        generated == committed,
        "deploy/rbac.yaml is out of date with the example plugins; regenerate it with\n  \
         cargo run -p wasmop -- rbac target/wasm-plugins/plugins > deploy/rbac.yaml\n\
         --- generated:\n{generated}"
    );
}

#[test]
fn rbac_names_a_plugin_it_cannot_read() {
    let out = wasmop().args(["rbac", "no-such-plugin.wasm"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no-such-plugin.wasm"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `to` relative to the directory `from` (kustomize refuses absolute paths to bases).
fn relative(from: &Path, to: &Path) -> String {
    let (from, to) = (from.canonicalize().unwrap(), to.canonicalize().unwrap());
    let up = "../".repeat(from.components().count() - 1);
    format!("{up}{}", to.strip_prefix("/").unwrap().display())
}

fn kubectl(kubeconfig: &Path, cache: &Path) -> Command {
    let mut c = Command::new("kubectl");
    c.env("KUBECONFIG", kubeconfig).arg("--cache-dir").arg(cache);
    c
}

#[test]
fn the_kustomize_base_renders_and_applies_to_the_embedded_server() {
    let deploy = repo().join("deploy");
    let rendered = check(
        "kubectl kustomize deploy/",
        &Command::new("kubectl")
            .arg("kustomize")
            .arg(&deploy)
            .output()
            .unwrap(),
    );
    for kind in [
        "kind: Namespace",
        "kind: ServiceAccount",
        "kind: ClusterRole\n",
        "kind: ClusterRoleBinding",
        "kind: Role\n",
        "kind: Deployment",
        "kind: PodDisruptionBudget",
        "kind: Service\n",
        "kind: NetworkPolicy",
        "kind: ConfigMap",
        "pod-security.kubernetes.io/enforce: restricted",
        "--leader-elect",
        "readOnlyRootFilesystem: true",
    ] {
        assert!(rendered.contains(kind), "{kind} missing from:\n{rendered}");
    }

    let dir = tempfile::tempdir().unwrap();
    let mut command = wasmop();
    command
        .args(["apiserver", "--port", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("WASMOP_LOG", "warn");
    let (mut child, kubeconfig) = spawn_wasmop(&mut command, "kubeconfig: ");
    let kubeconfig = PathBuf::from(kubeconfig);
    let cache = dir.path().join("kube-cache");

    let result = std::panic::catch_unwind(|| {
        // Every kind of the base is served, NetworkPolicy included: the base applies as it is.
        let served = check(
            "kubectl api-resources",
            &kubectl(&kubeconfig, &cache)
                .args(["api-resources", "-o", "name"])
                .output()
                .unwrap(),
        );
        assert!(
            served.lines().any(|l| l == "networkpolicies.networking.k8s.io"),
            "{served}"
        );
        // An overlay shipping pdb-guard through the ConfigMap generator, as docs/operations.md says.
        let overlay = dir.path().join("overlay");
        std::fs::create_dir(&overlay).unwrap();
        let plugin = wasmop_example_plugins::plugin_path("pdb-guard");
        std::fs::copy(&plugin, overlay.join("pdb-guard.wasm")).unwrap();
        std::fs::write(
            overlay.join("kustomization.yaml"),
            format!(
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
                 resources: [{}]\n\
                 configMapGenerator:\n\
                 - name: wasmop-plugins\n  namespace: wasmop-system\n  behavior: merge\n  files: [pdb-guard.wasm]\n",
                relative(&overlay, &deploy)
            ),
        )
        .unwrap();

        let out = kubectl(&kubeconfig, &cache)
            .args(["apply", "--server-side", "-k"])
            .arg(&deploy)
            .output()
            .unwrap();
        let applied = check("kubectl apply -k deploy/", &out);
        assert!(applied.contains("deployment.apps/wasmop"), "{applied}");
        assert!(
            applied.contains("networkpolicy.networking.k8s.io/wasmop"),
            "{applied}"
        );
        let out = kubectl(&kubeconfig, &cache)
            .args(["apply", "--server-side", "-k"])
            .arg(&overlay)
            .output()
            .unwrap();
        check("kubectl apply -k overlay", &out);
        let out = kubectl(&kubeconfig, &cache)
            .args([
                "-n",
                "wasmop-system",
                "get",
                "configmap",
                "wasmop-plugins",
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        let cm: serde_json::Value = serde_json::from_str(&check("kubectl get configmap", &out)).unwrap();
        let data = cm["binaryData"]["pdb-guard.wasm"].as_str().expect("binaryData");
        let len = std::fs::metadata(&plugin).unwrap().len() as usize;
        assert_eq!(
            data.len(),
            len.div_ceil(3) * 4,
            "the plugin's bytes, base64-encoded"
        );
        let out = kubectl(&kubeconfig, &cache)
            .args([
                "-n",
                "wasmop-system",
                "get",
                "deployment",
                "wasmop",
                "-o",
                "jsonpath={.spec.replicas}",
            ])
            .output()
            .unwrap();
        assert_eq!(check("kubectl get deployment", &out), "2");
        let out = kubectl(&kubeconfig, &cache)
            .args([
                "-n",
                "wasmop-system",
                "get",
                "netpol",
                "wasmop",
                "-o",
                "jsonpath={.metadata.generation} {.spec.policyTypes} {.spec.egress[1].ports[0].port}",
            ])
            .output()
            .unwrap();
        assert_eq!(check("kubectl get netpol", &out), r#"1 ["Ingress","Egress"] 53"#);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

//! The real `kubectl` against `wasmop apiserver`: the commands a user runs day to day.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{spawn_wasmop, wasmop};

/// `wasmop apiserver` running in a temporary data directory.
struct Apiserver {
    child: Child,
    kubeconfig: PathBuf,
    dir: tempfile::TempDir,
}

impl Apiserver {
    fn start() -> Apiserver {
        let dir = tempfile::tempdir().unwrap();
        let mut command = wasmop();
        command
            .args(["apiserver", "--port", "0", "--data-dir"])
            .arg(dir.path().join("data"))
            .env("WASMOP_LOG", "warn");
        let (child, kubeconfig) = spawn_wasmop(&mut command, "kubeconfig: ");
        let kubeconfig = PathBuf::from(kubeconfig);
        Apiserver {
            child,
            kubeconfig,
            dir,
        }
    }

    fn kubectl(&self) -> Command {
        let mut c = Command::new("kubectl");
        c.env("KUBECONFIG", &self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"));
        c
    }

    fn run(&self, args: &[&str]) -> String {
        let out = self.kubectl().args(args).output().expect("kubectl runs");
        check(args, &out);
        String::from_utf8(out.stdout).unwrap()
    }

    fn apply_stdin(&self, args: &[&str], manifest: &str) -> String {
        let mut child = self
            .kubectl()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(manifest.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        check(args, &out);
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check(args: &[&str], out: &Output) {
    assert!(
        out.status.success(),
        "kubectl {} failed: {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
}

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
"#;

const WIDGET: &str = r#"
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: demo}
spec: {size: 1, color: red}
"#;

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn kubectl_day_to_day_commands_work() {
    assert!(kubectl_available(), "kubectl must be installed for this test");
    let s = Apiserver::start();
    s.run(&["create", "namespace", "demo"]);
    s.apply_stdin(&["apply", "--server-side", "-f", "-"], CRD);
    s.run(&[
        "wait",
        "--for",
        "condition=established",
        "--timeout=30s",
        "crd/widgets.example.com",
    ]);
    s.apply_stdin(&["apply", "--server-side", "-f", "-"], WIDGET);
    let yaml = s.run(&[
        "get",
        "widget",
        "w",
        "-n",
        "demo",
        "-o",
        "yaml",
        "--show-managed-fields",
    ]);
    let obj: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    assert_eq!(obj["spec"]["size"], 1);
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "kubectl");

    let resources = s.run(&["api-resources"]);
    let line = resources
        .lines()
        .find(|l| l.starts_with("widgets"))
        .expect("api-resources lists widgets");
    assert!(
        line.contains("wd") && line.contains("example.com/v1") && line.contains("Widget"),
        "{line}"
    );
    assert!(resources.lines().any(|l| l.starts_with("configmaps")));

    // `get --watch` sees a change made by another client.
    let mut watch = s
        .kubectl()
        .args(["get", "widgets", "-n", "demo", "--watch"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let watch_out = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(watch_out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("watch prints the table");
    assert!(first.contains("NAME") && first.contains("SIZE"), "{first}");

    s.run(&[
        "patch",
        "widget",
        "w",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"size":5}}"#,
    ]);
    s.run(&[
        "patch",
        "widget",
        "w",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/color","value":"blue"}]"#,
    ]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_five = false;
    while Instant::now() < deadline && !saw_five {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(500)) {
            saw_five = line.split_whitespace().collect::<Vec<_>>().get(1) == Some(&"5");
        }
    }
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(saw_five, "kubectl get --watch printed the new size");
    let color = s.run(&["get", "widget", "w", "-n", "demo", "-o", "jsonpath={.spec.color}"]);
    assert_eq!(color, "blue");

    s.run(&[
        "wait",
        "--for=jsonpath={.spec.size}=5",
        "--timeout=30s",
        "widget/w",
        "-n",
        "demo",
    ]);

    // `delete` waits while a finalizer holds the object.
    s.run(&[
        "patch",
        "widget",
        "w",
        "-n",
        "demo",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    let mut delete = s
        .kubectl()
        .args(["delete", "widget", "w", "-n", "demo", "--timeout=60s"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_exit(&mut delete, Duration::from_secs(2)).is_none(),
        "delete waits for the finalizer"
    );
    s.run(&[
        "patch",
        "widget",
        "w",
        "-n",
        "demo",
        "--type",
        "json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]);
    let status =
        wait_exit(&mut delete, Duration::from_secs(30)).expect("delete returns once the finalizer is gone");
    assert!(status.success());
    let out = s
        .kubectl()
        .args(["get", "widget", "w", "-n", "demo"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Built-in kinds too: create a ConfigMap and read it back as YAML.
    s.apply_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: demo}\ndata: {k: v}\n",
    );
    let cm: serde_json::Value =
        serde_yaml::from_str(&s.run(&["get", "cm", "c", "-n", "demo", "-o", "yaml"])).unwrap();
    assert_eq!(cm["data"]["k"], "v");
}

/// kubectl's generators send protobuf bodies for built-in kinds; `explain` reads `/openapi/v3`.
#[test]
fn kubectl_create_generators_and_explain_work_for_built_in_kinds() {
    assert!(kubectl_available(), "kubectl must be installed for this test");
    let s = Apiserver::start();
    s.run(&["create", "namespace", "gen"]);
    let n = ["-n", "gen"];
    let create = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(n);
        s.run(&all)
    };
    create(&["create", "deployment", "web", "--image=nginx", "--replicas=2"]);
    create(&["create", "job", "once", "--image=busybox"]);
    create(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    create(&[
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=user=admin",
    ]);
    create(&["create", "configmap", "settings", "--from-literal=mode=fast"]);
    create(&["create", "serviceaccount", "robot"]);
    create(&["create", "role", "reader", "--verb=get,list", "--resource=pods"]);
    create(&[
        "create",
        "rolebinding",
        "read",
        "--role=reader",
        "--serviceaccount=gen:robot",
    ]);
    create(&[
        "create",
        "poddisruptionbudget",
        "web",
        "--selector=app=web",
        "--min-available=1",
    ]);
    create(&[
        "create",
        "cronjob",
        "nightly",
        "--image=busybox",
        "--schedule=0 3 * * *",
    ]);
    s.run(&[
        "create",
        "clusterrole",
        "viewer",
        "--verb=get",
        "--resource=configmaps",
    ]);

    let get = |kind: &str, name: &str| -> serde_json::Value {
        serde_yaml::from_str(&s.run(&["get", kind, name, "-n", "gen", "-o", "yaml"])).unwrap()
    };
    let deploy = get("deployment", "web");
    assert_eq!(deploy["spec"]["replicas"], 2);
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "web");
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx"
    );
    let job = get("job", "once");
    assert_eq!(
        job["spec"]["template"]["spec"]["containers"][0]["image"],
        "busybox"
    );
    let svc = get("service", "web");
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 8080);
    assert_eq!(svc["spec"]["type"], "ClusterIP");
    let secret = get("secret", "creds");
    assert_eq!(secret["data"]["user"], "YWRtaW4=");
    let role = get("role", "reader");
    assert_eq!(role["rules"][0]["verbs"], serde_json::json!(["get", "list"]));
    assert_eq!(role["rules"][0]["resources"], serde_json::json!(["pods"]));
    let binding = get("rolebinding", "read");
    assert_eq!(binding["roleRef"]["name"], "reader");
    assert_eq!(binding["subjects"][0]["kind"], "ServiceAccount");
    let pdb = get("pdb", "web");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    let cronjob = get("cronjob", "nightly");
    assert_eq!(cronjob["spec"]["schedule"], "0 3 * * *");
    let image = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"];
    assert_eq!(image, "busybox");
    let clusterrole: serde_json::Value =
        serde_yaml::from_str(&s.run(&["get", "clusterrole", "viewer", "-o", "yaml"])).unwrap();
    assert_eq!(
        clusterrole["rules"][0]["resources"],
        serde_json::json!(["configmaps"])
    );
    let cm = get("configmap", "settings");
    assert_eq!(cm["data"]["mode"], "fast");
    let sa = get("serviceaccount", "robot");
    assert_eq!(sa["metadata"]["name"], "robot");

    let explain = s.run(&["explain", "deployment.spec.replicas"]);
    assert!(
        explain.contains("Number of desired pods"),
        "explain shows the field's description: {explain}"
    );
    let explain = s.run(&["explain", "deployment.spec"]);
    assert!(
        explain.contains("replicas") && explain.contains("template"),
        "{explain}"
    );
}

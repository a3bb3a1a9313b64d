//! Security defaults (issue 11, security 3): what listens where and with what transport by default,
//! and no token or Secret data in the server's log, even at trace level.

use clap::Parser;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use serde_json::json;
use wasmop::cli::{Cli, Command};

fn parse(args: &[&str]) -> Command {
    Cli::try_parse_from(args).expect("valid arguments").command
}

#[test]
fn listeners_default_to_localhost_and_the_api_server_to_tls() {
    let Command::Run(run) = parse(&["wasmop", "run", "--plugins", "/p"]) else {
        panic!("run")
    };
    assert!(
        run.host.status.status_addr.ip().is_loopback(),
        "the status endpoint binds to localhost unless asked: {}",
        run.host.status.status_addr
    );
    let Command::Dev(dev) = parse(&["wasmop", "dev"]) else {
        panic!("dev")
    };
    assert!(dev.host.status.status_addr.ip().is_loopback());
    assert!(dev.apiserver.bind.is_loopback() && !dev.apiserver.insecure_http);
    let Command::Apiserver(api) = parse(&["wasmop", "apiserver"]) else {
        panic!("apiserver")
    };
    assert!(
        api.bind.is_loopback(),
        "the API server binds to localhost unless asked"
    );
    assert!(!api.insecure_http, "the API server serves HTTPS unless asked");
    let config = api.config();
    assert!(!config.insecure_http && config.bind.is_loopback());
    assert_eq!(config.max_watches_per_client, 1000);
}

#[tokio::test]
async fn neither_tokens_nor_secret_data_reach_the_log_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::support::wasmop();
    cmd.args(["apiserver", "--port", "0", "--data-dir"])
        .arg(dir.path())
        .env("WASMOP_LOG", "trace")
        .stderr(std::process::Stdio::piped());
    let (mut child, url) = spawn_with_stderr(&mut cmd);
    assert!(url.starts_with("https://"), "{url}");
    let token = std::fs::read_to_string(dir.path().join("token")).unwrap();
    let kubeconfig = std::fs::read_to_string(dir.path().join("kubeconfig")).unwrap();
    let client = wasmop::client_from_kubeconfig(&kubeconfig).await.unwrap();
    // A Secret (data and stringData), a wrong token, a ServiceAccount token minted and used.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "s"},
        "stringData": {"password": "sekret-value-0123456789"},
        "data": {"other": "b3RoZXItc2VjcmV0LXZhbHVlLTk4NzY1"},
    }))
    .unwrap();
    secrets.create(&PostParams::default(), &secret).await.unwrap();
    secrets.get("s").await.unwrap();
    let bad = kubeconfig.replace(token.trim(), "wrong-token-abcdef0123456789");
    let bad_client = wasmop::client_from_kubeconfig(&bad).await.unwrap();
    let denied: Api<Secret> = Api::namespaced(bad_client, "default");
    assert!(denied.get("s").await.is_err());
    let sa_token = client
        .request_text(
            http::Request::post("/api/v1/namespaces/default/serviceaccounts/default/token")
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})).unwrap())
                .unwrap(),
        )
        .await
        .unwrap();
    let sa_token: serde_json::Value = serde_json::from_str(&sa_token).unwrap();
    let sa_token = sa_token["status"]["token"].as_str().unwrap().to_string();
    let sa = kubeconfig.replace(token.trim(), &sa_token);
    let sa_client = wasmop::client_from_kubeconfig(&sa).await.unwrap();
    let _ = Api::<Secret>::namespaced(sa_client, "default").get("s").await;

    child.kill().unwrap();
    let _ = child.wait();
    let log = child_stderr(&mut child);
    assert!(log.lines().count() > 10, "the trace log was captured: {log}");
    for (what, secret) in [
        ("the admin token", token.trim()),
        ("a rejected token", "wrong-token-abcdef0123456789"),
        ("a ServiceAccount token", sa_token.as_str()),
        ("Secret stringData", "sekret-value-0123456789"),
        ("Secret data", "b3RoZXItc2VjcmV0LXZhbHVlLTk4NzY1"),
        ("Secret data, decoded", "other-secret-value-98765"),
        ("Secret data, stored base64", "c2VrcmV0LXZhbHVlLTAxMjM0NTY3ODk="),
    ] {
        assert!(!log.contains(secret), "{what} is in the log");
    }
}

/// Like `support::spawn_wasmop`, keeping stderr piped for [`child_stderr`].
fn spawn_with_stderr(cmd: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("wasmop runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix("wasmop API server listening on ") {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    // Drain stderr as it comes (a full pipe would block the server) into a file read at the end.
    let stderr = child.stderr.take().unwrap();
    let path = std::env::temp_dir().join(format!("wasmop-security-log-{}", child.id()));
    let mut file = std::fs::File::create(&path).unwrap();
    std::thread::spawn(move || {
        let mut stderr = stderr;
        let _ = std::io::copy(&mut stderr, &mut file);
    });
    let url = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the server starts");
    (child, url)
}

fn child_stderr(child: &mut std::process::Child) -> String {
    let path = std::env::temp_dir().join(format!("wasmop-security-log-{}", child.id()));
    // The copying thread ends when the pipe closes with the process.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    log
}

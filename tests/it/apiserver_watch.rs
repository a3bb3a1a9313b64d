//! Watch semantics through kube-rs: resume from a resourceVersion, 410 Gone and a relist through
//! `kube::runtime::watcher`, selector transitions and bookmarks.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher;
use serde_json::json;

use crate::support::TestServer;

fn cm(name: &str, app: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": app}}, "data": {"v": "0"}}))
        .unwrap()
}

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin),
) -> WatchEvent<ConfigMap> {
    tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an event in time")
        .expect("open")
        .unwrap()
}

fn describe(e: &WatchEvent<ConfigMap>) -> String {
    match e {
        WatchEvent::Added(c) => format!("ADDED {}", c.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Modified(c) => format!("MODIFIED {}", c.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Deleted(c) => format!("DELETED {}", c.metadata.name.as_deref().unwrap_or("")),
        WatchEvent::Bookmark(b) => format!("BOOKMARK {}", b.metadata.resource_version),
        WatchEvent::Error(e) => format!("ERROR {}", e.code),
    }
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let a = cms.create(&PostParams::default(), &cm("a", "x")).await.unwrap();
    let rv = a.metadata.resource_version.clone().unwrap();
    cms.create(&PostParams::default(), &cm("b", "x")).await.unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "1"}})),
    )
    .await
    .unwrap();
    // Replays only what happened after `rv`, then goes on live.
    let mut stream = cms.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
    assert_eq!(describe(&next_event(&mut stream).await), "ADDED b");
    assert_eq!(describe(&next_event(&mut stream).await), "MODIFIED a");
    cms.delete("b", &Default::default()).await.unwrap();
    assert_eq!(describe(&next_event(&mut stream).await), "DELETED b");

    // From "0": synthetic ADDED for what exists.
    let mut from_zero = cms.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    assert_eq!(describe(&next_event(&mut from_zero).await), "ADDED a");
    t.server.shutdown().await;
}

#[tokio::test]
async fn label_selector_watch_sees_objects_leave_and_enter() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let c = cms.create(&PostParams::default(), &cm("a", "x")).await.unwrap();
    let rv = c.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().labels("app=x"), &rv)
        .await
        .unwrap()
        .boxed();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await
    .unwrap();
    let left = next_event(&mut stream).await;
    assert_eq!(describe(&left), "DELETED a");
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    assert_eq!(describe(&next_event(&mut stream).await), "ADDED a");
    t.server.shutdown().await;
}

#[tokio::test]
async fn bookmarks_come_when_asked_for() {
    let t = TestServer::start_with(|c| c.bookmark_interval = Duration::from_millis(300)).await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let c = cms.create(&PostParams::default(), &cm("a", "x")).await.unwrap();
    let rv = c.metadata.resource_version.unwrap();
    let mut stream = cms
        .watch(
            &WatchParams {
                bookmarks: true,
                ..WatchParams::default()
            },
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    let e = next_event(&mut stream).await;
    let WatchEvent::Bookmark(b) = e else {
        panic!("expected a bookmark, got {}", describe(&e))
    };
    assert!(b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap());
    t.server.shutdown().await;
}

#[tokio::test]
async fn too_old_resource_version_is_gone_and_the_watcher_relists() {
    let t = TestServer::start_with(|c| c.history_limit = 5).await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let first = cms
        .create(&PostParams::default(), &cm("first", "x"))
        .await
        .unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    for i in 0..10 {
        cms.create(&PostParams::default(), &cm(&format!("c{i}"), "x"))
            .await
            .unwrap();
    }
    // A raw watch from a compacted revision gets a 410 Expired ERROR event.
    let mut raw = cms.watch(&WatchParams::default(), &old_rv).await.unwrap().boxed();
    match next_event(&mut raw).await {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(e.message.starts_with("too old resource version"), "{}", e.message);
        }
        other => panic!("expected 410, got {}", describe(&other)),
    }

    // kube's watcher: list, watch, then lose its place while disconnected; it must relist and go on.
    let stream = watcher(cms.clone(), watcher::Config::default());
    let mut stream = stream.boxed();
    let mut initial = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            watcher::Event::InitApply(c) => initial.push(c.metadata.name.unwrap()),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert_eq!(initial.len(), 11);
    // End every open watch, then push the history past the watcher's resourceVersion.
    t.server.faults().close_watches();
    for i in 0..10 {
        cms.create(&PostParams::default(), &cm(&format!("late{i}"), "x"))
            .await
            .unwrap();
    }
    let mut saw_gone = false;
    let mut names = Vec::new();
    let relisted = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match stream.next().await.expect("the watcher goes on") {
                Err(watcher::Error::WatchError(e)) if e.code == 410 => saw_gone = true,
                Err(_) => {}
                Ok(watcher::Event::Init) => names.clear(),
                Ok(watcher::Event::InitApply(c)) => names.push(c.metadata.name.unwrap()),
                Ok(watcher::Event::InitDone) => return names,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("a relist that includes the late objects");
    assert!(saw_gone, "the watcher saw 410 Gone");
    assert_eq!(relisted.len(), 21);
    assert!(relisted.contains(&"late9".to_string()));
    t.server.shutdown().await;
}

//! The client against a real, private `ovsdb-server` (vswitch schema, temp unix socket):
//! every method and `transact` operation, monitors, typed server errors, stale replicas,
//! a killed and restarted server, and a frozen one.

use std::time::Duration;

use ovsdb::client::{connect_with_backoff, Backoff, Connection, Monitored, Target};
use ovsdb::ops::string_map;
use ovsdb::rpc::{Config, MonitorRequests};
use ovsdb::{
    ChangeKind, Condition, Error, Function, Mutation, Mutator, Operation, Row, ServerErrorKind,
    Txn, Value, WaitUntil,
};
use serde_json::json;
use testbed::Sandbox;

const DB: &str = "Open_vSwitch";

fn sandbox(name: &str) -> Sandbox {
    let sb =
        Sandbox::start_db_only(name).expect("private ovsdb-server (install openvswitch-switch)");
    sb.vsctl(&["--no-wait", "init"]).expect("init");
    sb
}

async fn connect(sb: &Sandbox) -> (Connection, ovsdb::client::Notifications) {
    let target = Target::Unix(sb.db_sock());
    Connection::connect(&target, Config::default())
        .await
        .expect("connect")
}

fn row<const N: usize>(cols: [(&str, Value); N]) -> Row {
    cols.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn bridge_ops(name: &str) -> Vec<Operation> {
    vec![
        Operation::insert_named("Bridge", row([("name", name.into())]), "br"),
        Operation::mutate(
            "Open_vSwitch",
            vec![],
            vec![Mutation::new(
                "bridges",
                Mutator::Insert,
                Value::named("br"),
            )],
        ),
    ]
}

fn requests() -> MonitorRequests {
    MonitorRequests::default()
        .table("Open_vSwitch", &["bridges", "external_ids"])
        .table("Bridge", &["name", "external_ids", "ports"])
}

#[tokio::test]
async fn methods_and_every_transact_op() {
    let sb = sandbox("ops");
    let (c, _n) = connect(&sb).await;
    assert!(c.list_dbs().await.unwrap().contains(&DB.to_string()));
    let schema = c.get_schema(DB).await.unwrap();
    assert!(schema.tables.contains_key("Bridge"));
    assert_eq!(c.echo(json!(["hi", 1])).await.unwrap(), json!(["hi", 1]));

    // insert with uuid-name, referenced by a mutate in the same transaction; comment; commit.
    let mut ops = bridge_ops("br0");
    ops.push(Operation::Comment("strowger test".into()));
    ops.push(Operation::Commit { durable: false });
    let r = c.transact(DB, &ops).await.unwrap();
    let br = r[0].uuid.expect("insert returns the uuid");
    assert_eq!(r[1].count, Some(1));
    assert!(sb.vsctl(&["--no-wait", "list-br"]).unwrap().contains("br0"));

    // update, then select it back.
    let r = c
        .transact(
            DB,
            &[Operation::update(
                "Bridge",
                vec![Condition::uuid(br)],
                row([("external_ids", string_map([("a", "1")]))]),
            )],
        )
        .await
        .unwrap();
    assert_eq!(r[0].count, Some(1));
    // mutate a map: insert a key.
    c.transact(
        DB,
        &[Operation::mutate(
            "Bridge",
            vec![Condition::eq("name", "br0")],
            vec![Mutation::new(
                "external_ids",
                Mutator::Insert,
                string_map([("b", "2")]),
            )],
        )],
    )
    .await
    .unwrap();
    let r = c
        .transact(
            DB,
            &[Operation::select(
                "Bridge",
                vec![Condition::new("name", Function::Eq, "br0")],
                Some(vec!["external_ids".into(), "_uuid".into()]),
            )],
        )
        .await
        .unwrap();
    let rows = r[0].rows.as_ref().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["external_ids"],
        Value::map([("a", "1"), ("b", "2")])
    );
    assert_eq!(rows[0]["_uuid"], Value::uuid(br));
    assert_eq!(
        sb.vsctl(&["--no-wait", "get", "Bridge", "br0", "external_ids:b"])
            .unwrap()
            .trim(),
        "\"2\""
    );

    // wait that holds, then one that does not (timeout 0 → timed out → Stale).
    let wait = |v: &str| Operation::Wait {
        table: "Bridge".into(),
        conditions: vec![Condition::uuid(br)],
        columns: vec!["name".into()],
        until: WaitUntil::Eq,
        rows: vec![row([("name", v.into())])],
        timeout_ms: Some(0),
    };
    c.transact(DB, &[wait("br0")]).await.unwrap();
    assert!(matches!(
        c.transact(DB, &[wait("other")]).await,
        Err(Error::Stale)
    ));

    // abort: the whole transaction fails, nothing applied.
    let mut ops = bridge_ops("br-aborted");
    ops.push(Operation::Abort);
    match c.transact(DB, &ops).await {
        Err(Error::Server { index: 2, error }) => assert_eq!(error.kind, ServerErrorKind::Aborted),
        r => panic!("{r:?}"),
    }
    assert!(!sb
        .vsctl(&["--no-wait", "list-br"])
        .unwrap()
        .contains("br-aborted"));

    // delete: drop the reference from the root table; the bridge goes with it.
    let r = c
        .transact(
            DB,
            &[
                Operation::mutate(
                    "Open_vSwitch",
                    vec![],
                    vec![Mutation::new("bridges", Mutator::Delete, Value::uuid(br))],
                ),
                Operation::delete("Bridge", vec![Condition::uuid(br)]),
            ],
        )
        .await
        .unwrap();
    assert_eq!(r[1].count, Some(1));
    assert!(sb
        .vsctl(&["--no-wait", "list-br"])
        .unwrap()
        .trim()
        .is_empty());
}

#[tokio::test]
async fn server_errors_are_typed() {
    let sb = sandbox("errs");
    let (c, _n) = connect(&sb).await;
    c.transact(DB, &bridge_ops("dup")).await.unwrap();
    // The Bridge name index: a second "dup" violates it.
    match c.transact(DB, &bridge_ops("dup")).await {
        Err(Error::Server { error, .. }) => {
            assert_eq!(error.kind, ServerErrorKind::ConstraintViolation);
            assert!(error.details.unwrap_or_default().contains("dup"));
        }
        r => panic!("{r:?}"),
    }
    // A port referencing an interface that does not exist.
    let ghost = uuid::Uuid::new_v4();
    let ops = [Operation::insert(
        "Port",
        row([("name", "p".into()), ("interfaces", Value::set([ghost]))]),
    )];
    match c.transact(DB, &ops).await {
        Err(Error::Server { error, .. }) => {
            assert_eq!(error.kind, ServerErrorKind::ReferentialIntegrity, "{error}")
        }
        r => panic!("{r:?}"),
    }
    // Unknown database: a JSON-RPC level error.
    assert!(matches!(
        c.transact("Nope", &[Operation::Abort]).await,
        Err(Error::Rpc { .. })
    ));
    // Sent without a local check, an unknown table is the server's syntax error...
    match c.transact(DB, &[Operation::delete("Nope", vec![])]).await {
        Err(Error::Server { error, .. }) => assert_eq!(error.kind, ServerErrorKind::SyntaxError),
        r => panic!("{r:?}"),
    }
    // ...and through a monitored replica it is refused before sending.
    let (c2, n2) = connect(&sb).await;
    let mut m = Monitored::start(c2, n2, DB, &requests(), None)
        .await
        .unwrap();
    let r = m
        .transact(|_| Ok(Some(vec![Operation::delete("Nope", vec![])])))
        .await;
    assert!(matches!(r, Err(Error::UnknownTable(t)) if t == "Nope"));
    let r = m
        .transact(|_| {
            Ok(Some(vec![Operation::select(
                "Bridge",
                vec![Condition::eq("nope", 1)],
                None,
            )]))
        })
        .await;
    assert!(matches!(r, Err(Error::UnknownColumn { .. })));
    let bad = MonitorRequests::default().table("Bridge", &["nope"]);
    let (c3, n3) = connect(&sb).await;
    assert!(matches!(
        Monitored::start(c3, n3, DB, &bad, None).await,
        Err(Error::UnknownColumn { .. })
    ));
}

#[tokio::test]
async fn monitor_follows_changes() {
    let sb = sandbox("mon");
    let (c, n) = connect(&sb).await;
    let mut m = Monitored::start(c, n, DB, &requests(), None).await.unwrap();
    assert_eq!(m.method(), ovsdb::client::MonitorMethod::MonitorCondSince);
    assert_eq!(m.replica().rows("Open_vSwitch").count(), 1);
    assert_eq!(m.replica().rows("Bridge").count(), 0);

    sb.vsctl(&[
        "--no-wait",
        "add-br",
        "b1",
        "--",
        "set",
        "Bridge",
        "b1",
        "external_ids:x=1",
    ])
    .unwrap();
    let mut seen = vec![];
    while m.replica().find("Bridge", "name", "b1").is_none() {
        seen.extend(
            tokio::time::timeout(Duration::from_secs(5), m.changes())
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(seen
        .iter()
        .any(|c| c.table == "Bridge" && c.kind == ChangeKind::Insert));
    let (u, r) = m.replica().find("Bridge", "name", "b1").unwrap();
    assert_eq!(r["external_ids"], Value::map([("x", "1")]));

    sb.vsctl(&["--no-wait", "set", "Bridge", "b1", "external_ids:y=2"])
        .unwrap();
    let c = tokio::time::timeout(Duration::from_secs(5), m.changes())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c[0].kind, ChangeKind::Modify);
    assert_eq!(
        m.replica().get("Bridge", &u).unwrap()["external_ids"],
        Value::map([("x", "1"), ("y", "2")])
    );

    sb.vsctl(&["--no-wait", "del-br", "b1"]).unwrap();
    loop {
        let c = tokio::time::timeout(Duration::from_secs(5), m.changes())
            .await
            .unwrap()
            .unwrap();
        if c.iter()
            .any(|c| c.kind == ChangeKind::Delete && c.uuid == u)
        {
            break;
        }
    }
    assert!(m.replica().get("Bridge", &u).is_none());
}

#[tokio::test]
async fn stale_replica_is_retried() {
    let sb = sandbox("stale");
    sb.vsctl(&["--no-wait", "add-br", "b1"]).unwrap();
    let (c, n) = connect(&sb).await;
    let mut m = Monitored::start(c, n, DB, &requests(), None).await.unwrap();
    let mut attempts = 0;
    let r = m
        .transact(|replica| {
            attempts += 1;
            let (u, row) = replica.find("Bridge", "name", "b1").expect("b1");
            if attempts == 1 {
                // Someone else changes the row between our read and our write.
                sb.vsctl(&["--no-wait", "set", "Bridge", "b1", "external_ids:k=theirs"])
                    .unwrap();
            }
            // Read-modify-write of the whole map: only safe with the verify.
            let mut ids = row["external_ids"].as_map().unwrap_or_default();
            ids.insert("mine".into(), "1".into());
            let mut txn = Txn::new(replica);
            txn.verify("Bridge", u, &["external_ids"])
                .push(Operation::update(
                    "Bridge",
                    vec![Condition::uuid(u)],
                    row_of("external_ids", Value::Map(ids)),
                ));
            Ok(Some(txn.into_ops()))
        })
        .await
        .unwrap();
    assert!(r.is_some());
    assert_eq!(attempts, 2);
    let ids = sb
        .vsctl(&["--no-wait", "get", "Bridge", "b1", "external_ids"])
        .unwrap();
    assert!(
        ids.contains("k=theirs") && ids.contains("mine=\"1\""),
        "{ids}"
    );
}

fn row_of(col: &str, v: Value) -> Row {
    [(col.to_string(), v)].into()
}

#[tokio::test]
async fn locks() {
    let sb = sandbox("locks");
    let (a, _an) = connect(&sb).await;
    let (b, mut bn) = connect(&sb).await;
    assert!(a.lock("L").await.unwrap());
    assert!(!b.lock("L").await.unwrap());
    a.transact(DB, &[Operation::Assert { lock: "L".into() }])
        .await
        .unwrap();
    match b
        .transact(DB, &[Operation::Assert { lock: "L".into() }])
        .await
    {
        Err(Error::Server { error, .. }) => assert_eq!(error.kind, ServerErrorKind::NotOwner),
        r => panic!("{r:?}"),
    }
    // A releases: B, queued, is granted the lock by notification.
    a.unlock("L").await.unwrap();
    let locked = tokio::time::timeout(Duration::from_secs(5), bn.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (locked.method.as_str(), &locked.params),
        ("locked", &json!(["L"]))
    );
    // A steals it back: B is told.
    assert!(a.steal("L").await.unwrap());
    let stolen = tokio::time::timeout(Duration::from_secs(5), bn.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stolen.method.as_str(), &stolen.params),
        ("stolen", &json!(["L"]))
    );
    a.transact(DB, &[Operation::Assert { lock: "L".into() }])
        .await
        .unwrap();
    a.unlock("L").await.unwrap();
}

#[tokio::test]
async fn killed_server_reconnect_and_resync() {
    let sb = sandbox("kill");
    let target = Target::Unix(sb.db_sock());
    let cfg = Config::default();
    let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200));
    let (c, n) = connect_with_backoff(&target, &cfg, &mut backoff).await;
    let mut m = Monitored::start(c, n, DB, &requests(), None).await.unwrap();
    m.transact(|_| Ok(Some(bridge_ops("before"))))
        .await
        .unwrap();
    assert!(m.replica().find("Bridge", "name", "before").is_some());
    // The transaction's own update, applied before its reply, is reported once.
    assert!(!m.poll_changes().unwrap().is_empty());

    sb.kill_db().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), m.changes())
        .await
        .unwrap();
    assert!(matches!(r, Err(Error::Disconnected)));
    let previous = m.into_replica();

    // Redial while the server is down; it comes back with another bridge added offline.
    let redial = tokio::spawn(async move {
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(200));
        connect_with_backoff(&target, &cfg, &mut backoff).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    sb.tool(
        "ovsdb-tool",
        &[
            "transact",
            &sb.dir().join("conf.db").to_string_lossy(),
            &serde_json::to_string(&json!([DB,
                {"op": "insert", "table": "Bridge", "row": {"name": "offline"}, "uuid-name": "b"},
                {"op": "mutate", "table": "Open_vSwitch", "where": [],
                 "mutations": [["bridges", "insert", ["named-uuid", "b"]]]}]))
            .unwrap(),
        ],
    )
    .unwrap();
    sb.restart_db().unwrap();
    let (c, n) = tokio::time::timeout(Duration::from_secs(10), redial)
        .await
        .unwrap()
        .unwrap();
    let m = Monitored::start(c, n, DB, &requests(), Some(previous))
        .await
        .unwrap();
    let names: Vec<_> = m
        .replica()
        .rows("Bridge")
        .filter_map(|(_, r)| r["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.contains(&"before".into()) && names.contains(&"offline".into()));
}

#[tokio::test]
async fn frozen_server_times_out_and_nothing_is_half_applied() {
    let sb = sandbox("frozen");
    let target = Target::Unix(sb.db_sock());
    let cfg = Config {
        echo_interval: Some(Duration::from_millis(1000)),
        request_timeout: Duration::from_millis(1500),
        ..Config::default()
    };
    let (c, _n) = Connection::connect(&target, cfg).await.unwrap();
    c.echo(json!([])).await.unwrap();
    sb.freeze_db().unwrap();
    let mut ops = bridge_ops("frozen");
    ops.push(Operation::update(
        "Open_vSwitch",
        vec![],
        row([("external_ids", string_map([("frozen", "yes")]))]),
    ));
    let r = c.transact(DB, &ops).await;
    assert!(
        matches!(r, Err(Error::Timeout(_)) | Err(Error::PeerDead)),
        "{r:?}"
    );
    // The keepalive declares the frozen server dead.
    let why = tokio::time::timeout(Duration::from_secs(5), c.closed())
        .await
        .unwrap();
    assert!(why.contains("echo"), "{why}");
    sb.thaw_db().unwrap();
    // All or nothing: the bridge, its reference and the external id together, or none.
    let show = sb.vsctl(&["--no-wait", "list-br"]).unwrap();
    let ids = sb
        .vsctl(&["--no-wait", "get", "Open_vSwitch", ".", "external_ids"])
        .unwrap();
    let bridge = show.contains("frozen");
    assert_eq!(
        bridge,
        ids.contains("frozen"),
        "half applied: {show} / {ids}"
    );
    // The server still works.
    let (c, _n) = connect(&sb).await;
    c.transact(DB, &bridge_ops("after")).await.unwrap();
}

#[tokio::test]
async fn verify_after_resync_holds() {
    let sb = sandbox("verify");
    sb.vsctl(&[
        "--no-wait",
        "add-br",
        "b1",
        "--",
        "add-port",
        "b1",
        "p1",
        "--",
        "set-controller",
        "b1",
        "tcp:1.2.3.4:6653",
    ])
    .unwrap();
    let (c, n) = connect(&sb).await;
    let reqs = MonitorRequests::default()
        .table("Open_vSwitch", &["bridges"])
        .table(
            "Bridge",
            &["name", "ports", "controller", "external_ids", "fail_mode"],
        )
        .table("Port", &["name"]);
    let m = Monitored::start(c, n, DB, &reqs, None).await.unwrap();
    let previous = m.into_replica();
    sb.kill_db().unwrap();
    sb.restart_db().unwrap();
    let (c, n) = connect(&sb).await;
    let mut m = Monitored::start(c, n, DB, &reqs, Some(previous))
        .await
        .unwrap();
    sb.vsctl(&["--no-wait", "add-port", "b1", "p2"]).unwrap();
    sb.vsctl(&["--no-wait", "del-port", "p1"]).unwrap();
    while m.replica().find("Port", "name", "p1").is_some()
        || m.replica()
            .rows("Bridge")
            .any(|(_, r)| r["ports"].atoms().len() != 2)
    {
        tokio::time::timeout(Duration::from_secs(5), m.changes())
            .await
            .unwrap()
            .unwrap();
    }
    let (u, _) = m.replica().find("Bridge", "name", "b1").unwrap();
    // The waits see the rows as read even though the transaction changes them after.
    let r = m
        .transact(|replica| {
            let mut txn = Txn::new(replica);
            txn.push(Operation::update(
                "Bridge",
                vec![Condition::uuid(u)],
                row([("fail_mode", Value::set(["secure"]))]),
            ));
            txn.verify(
                "Bridge",
                u,
                &["ports", "controller", "external_ids", "fail_mode", "name"],
            )
            .verify_rows("Bridge")
            .verify_absent("Bridge", vec![Condition::eq("name", "b2")]);
            Ok(Some(txn.into_ops()))
        })
        .await;
    assert!(r.is_ok(), "{r:?}");
    assert!(m.replica().get("Bridge", &u).unwrap()["fail_mode"] == Value::set(["secure"]));
}

#[tokio::test]
async fn blocking_wait_completes_or_is_cancelled() {
    let sb = sandbox("wait");
    let (c, _n) = connect(&sb).await;
    let until_exists = |name: &str| Operation::Wait {
        table: "Bridge".into(),
        conditions: vec![Condition::eq("name", name)],
        columns: vec!["name".into()],
        until: WaitUntil::Eq,
        rows: vec![row([("name", name.into())])],
        timeout_ms: None,
    };
    // Blocks until another client creates the row.
    let waiting = tokio::spawn({
        let c = c.clone();
        let op = until_exists("later");
        async move { c.transact(DB, &[op]).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!waiting.is_finished());
    sb.vsctl(&["--no-wait", "add-br", "later"]).unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();

    // Never satisfied: cancelled.
    let req = ovsdb::rpc::Request::transact(DB, &[until_exists("never")]);
    let r = c
        .call_cancellable(req, tokio::time::sleep(Duration::from_millis(100)))
        .await;
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    // The session goes on; the server dropped the wait (creating the row now answers nothing).
    sb.vsctl(&["--no-wait", "add-br", "never"]).unwrap();
    assert_eq!(c.echo(json!(["after"])).await.unwrap(), json!(["after"]));
}

#[tokio::test]
async fn monitor_and_monitor_cond_notifications() {
    use ovsdb::rpc::Request;
    let sb = sandbox("rawmon");
    let (c, mut n) = connect(&sb).await;
    let schema = std::sync::Arc::new(c.get_schema(DB).await.unwrap());
    let reqs = MonitorRequests::default().table("Bridge", &["name", "external_ids"]);
    let mut plain = ovsdb::Replica::new(schema.clone());
    let mut cond = ovsdb::Replica::new(schema);
    plain
        .apply_update(
            &c.call(Request::monitor(DB, &json!("m1"), &reqs))
                .await
                .unwrap(),
        )
        .unwrap();
    cond.apply_update2(
        &c.call(Request::monitor_cond(DB, &json!("m2"), &reqs))
            .await
            .unwrap(),
    )
    .unwrap();
    sb.vsctl(&[
        "--no-wait",
        "add-br",
        "b1",
        "--",
        "set",
        "Bridge",
        "b1",
        "external_ids:a=1",
    ])
    .unwrap();
    sb.vsctl(&["--no-wait", "set", "Bridge", "b1", "external_ids:a=2"])
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let done = |r: &ovsdb::Replica| {
        r.find("Bridge", "name", "b1")
            .is_some_and(|(_, row)| row["external_ids"] == Value::map([("a", "2")]))
    };
    while !(done(&plain) && done(&cond)) {
        let note = tokio::time::timeout_at(deadline, n.recv())
            .await
            .unwrap()
            .unwrap();
        match (note.method.as_str(), note.params[0].as_str()) {
            ("update", Some("m1")) => {
                plain.apply_update(&note.params[1]).unwrap();
            }
            ("update2", Some("m2")) => {
                cond.apply_update2(&note.params[1]).unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    c.call(Request::monitor_cancel(&json!("m1"))).await.unwrap();
    assert!(c.call(Request::monitor_cancel(&json!("m1"))).await.is_err());
}

/// A host dialing in (`set-manager`) probes us with `echo` when idle; we answer, so it keeps
/// the connection although our own keepalive is off.
#[tokio::test]
async fn passive_connection_answers_server_echo() {
    let sb = sandbox("echo");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let (_stop, stop_rx) = tokio::sync::watch::channel(false);
    let cfg = Config {
        echo_interval: None,
        ..Config::default()
    };
    tokio::spawn(ovsdb::client::listen(listener, cfg, 4, tx, stop_rx));
    let target = format!("tcp:127.0.0.1:{port}");
    sb.vsctl(&[
        "--no-wait",
        "--",
        "--id=@m",
        "create",
        "Manager",
        &format!("target=\"{target}\""),
        "inactivity_probe=1000",
        "--",
        "add",
        "Open_vSwitch",
        ".",
        "manager_options",
        "@m",
    ])
    .unwrap();
    let (c, _n, _peer) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(c.list_dbs().await.unwrap().contains(&DB.to_string()));
    // Idle for three probe intervals: an unanswered probe would have dropped us after two.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        !c.is_closed(),
        "the server dropped us: {}",
        c.closed().await
    );
    c.echo(json!([1])).await.unwrap();
    let status = sb.vsctl(&[
        "--no-wait",
        "get",
        "Manager",
        &target,
        "status:sec_since_connect",
    ]);
    assert!(status.is_ok(), "{status:?}");
}

/// An update of another client that arrives while a sync (or a transaction) awaits its reply
/// is applied then, and `changes` still reports it at once. It used to wait for the next
/// update instead: a loop that planned from the replica and then waited on `changes` slept
/// with that change unplanned (the lost wake-up behind a CI flake, where the load generator's
/// emulated vswitchd never numbered a tunnel the controller created during its transaction).
#[tokio::test]
async fn an_update_applied_while_awaiting_a_reply_still_wakes_changes() {
    let sb = sandbox("unseen");
    let (c, n) = connect(&sb).await;
    let mut m = Monitored::start(c, n, DB, &requests(), None).await.unwrap();
    sb.vsctl(&["--no-wait", "add-br", "b1"]).unwrap();
    // The server sends a session its pending updates before it answers the session's next
    // request: the sync applies b1's insert.
    m.sync().await.unwrap();
    assert!(m.replica().find("Bridge", "name", "b1").is_some());
    let c = tokio::time::timeout(Duration::from_secs(2), m.changes())
        .await
        .expect("changes reports what the sync applied, without waiting for another update")
        .unwrap();
    assert!(
        c.iter()
            .any(|c| c.table == "Bridge" && c.kind == ChangeKind::Insert),
        "{c:?}"
    );
}

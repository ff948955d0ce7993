//! Validation, referential integrity, tunnel keys and snapshot indexes, through `Network`.

use std::sync::Arc;

use uuid::Uuid;

use crate::*;

fn net() -> Network {
    Network::open(Arc::new(MemStore::new())).unwrap()
}

fn w<T>(n: &Network, f: impl FnOnce(&mut Txn) -> Result<T>) -> Result<T> {
    n.write(f).map(|(v, _)| v)
}

fn bridge(name: &str) -> Bridge {
    serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
}
fn router(name: &str) -> Router {
    serde_json::from_value(serde_json::json!({ "name": name })).unwrap()
}
fn port(v: serde_json::Value) -> Port {
    serde_json::from_value(v).unwrap()
}
fn host(name: &str) -> Host {
    serde_json::from_value(serde_json::json!({ "name": name, "tunnel_ip": "192.0.2.1" })).unwrap()
}
fn rule(v: serde_json::Value) -> Rule {
    serde_json::from_value(v).unwrap()
}

fn field(e: Error) -> String {
    match e {
        Error::Invalid { field, .. } => field,
        Error::Conflict { field, .. } => field.unwrap_or_default(),
        other => panic!("not a field error: {other:?}"),
    }
}

/// The kind of resource a refused delete names.
fn referrer<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    match r {
        Err(Error::Referenced { referrer_kind, .. }) => referrer_kind,
        other => panic!("not refused as referenced: {other:?}"),
    }
}

/// A router with one port (10.0.0.1/24) and a bridge with one port.
fn fixture(n: &Network) -> (Uuid, Uuid, Uuid, Uuid) {
    w(n, |t| {
        let r = t.create_router(router("r"))?.id;
        let b = t.create_bridge(bridge("b"))?.id;
        let rp = t
            .create_port(r, port(serde_json::json!({"address": "10.0.0.1/24"})))?
            .id;
        let bp = t.create_port(b, port(serde_json::json!({})))?.id;
        Ok((r, b, rp, bp))
    })
    .unwrap()
}

#[test]
fn ports_get_unique_tunnel_keys_and_macs() {
    let n = net();
    let (r, _, rp, bp) = fixture(&n);
    let s = n.snapshot();
    let a = s.get::<Port>(rp).unwrap();
    let b = s.get::<Port>(bp).unwrap();
    assert_ne!(a.tunnel_key, b.tunnel_key);
    assert!(a.tunnel_key >= 1 && a.tunnel_key <= MAX_TUNNEL_KEY);
    let mac = a.mac.unwrap();
    assert_eq!(mac.0[0], 0x02);
    assert_eq!(s.router_port_by_mac(mac).unwrap().id, rp);
    assert_eq!(s.port_by_tunnel_key(b.tunnel_key).unwrap().id, bp);
    assert_eq!(s.ports_of(r).count(), 1);
    assert!(b.mac.is_none());
}

#[test]
fn tunnel_keys_are_not_reused_right_away() {
    let n = net();
    let (_, b, _, bp) = fixture(&n);
    let k = n.snapshot().get::<Port>(bp).unwrap().tunnel_key;
    w(&n, |t| t.delete_port(bp)).unwrap();
    let p = w(&n, |t| t.create_port(b, port(serde_json::json!({})))).unwrap();
    assert_ne!(p.tunnel_key, k);
}

#[test]
fn tunnel_key_allocator_wraps_and_skips_used_keys() {
    let n = net();
    let (_, b, _, _) = fixture(&n);
    let used: Vec<u32> = n.snapshot().list::<Port>().map(|p| p.tunnel_key).collect();
    // Put the cursor on the last key: the next allocation wraps to 1, which is in use.
    let p = w(&n, |t| {
        t.snap.next_tunnel_key = MAX_TUNNEL_KEY;
        t.create_port(b, port(serde_json::json!({})))
    })
    .unwrap();
    assert_eq!(p.tunnel_key, MAX_TUNNEL_KEY);
    let q = w(&n, |t| t.create_port(b, port(serde_json::json!({})))).unwrap();
    assert!(!used.contains(&q.tunnel_key));
    assert!(q.tunnel_key >= 1);
}

#[test]
fn bridge_ports_have_no_l3_and_router_ports_need_it() {
    let n = net();
    let (r, b, _, _) = fixture(&n);
    let e = w(&n, |t| {
        t.create_port(b, port(serde_json::json!({"address": "10.1.0.1/24"})))
    });
    assert_eq!(field(e.unwrap_err()), "address");
    let e = w(&n, |t| {
        t.create_port(b, port(serde_json::json!({"mac": "02:00:00:00:00:01"})))
    });
    assert_eq!(field(e.unwrap_err()), "mac");
    let e = w(&n, |t| t.create_port(r, port(serde_json::json!({}))));
    assert_eq!(field(e.unwrap_err()), "address");
    let e = w(&n, |t| {
        t.create_port(r, port(serde_json::json!({"address": "10.9.0.0/24"})))
    });
    assert_eq!(field(e.unwrap_err()), "address");
    let e = w(&n, |t| {
        t.create_port(
            r,
            port(serde_json::json!({"address": "10.9.0.1/24", "mac": "01:00:5e:00:00:01"})),
        )
    });
    assert_eq!(field(e.unwrap_err()), "mac");
}

#[test]
fn router_port_subnets_do_not_overlap() {
    let n = net();
    let (r, _, _, _) = fixture(&n);
    let e = w(&n, |t| {
        t.create_port(r, port(serde_json::json!({"address": "10.0.0.2/16"})))
    });
    assert!(matches!(e, Err(Error::Conflict { .. })));
    // Another router may reuse the subnet.
    w(&n, |t| {
        let r2 = t.create_router(router("r2"))?.id;
        t.create_port(r2, port(serde_json::json!({"address": "10.0.0.1/24"})))
    })
    .unwrap();
}

#[test]
fn links_are_symmetric_one_peer_and_exclusive_with_bindings() {
    let n = net();
    let (r, b, rp, bp) = fixture(&n);
    w(&n, |t| t.link(rp, bp)).unwrap();
    let s = n.snapshot();
    assert_eq!(s.get::<Port>(rp).unwrap().peer_id, Some(bp));
    assert_eq!(s.get::<Port>(bp).unwrap().peer_id, Some(rp));
    // A second peer is a conflict.
    let bp2 = w(&n, |t| t.create_port(b, port(serde_json::json!({}))))
        .unwrap()
        .id;
    assert!(matches!(
        w(&n, |t| t.link(bp2, rp)),
        Err(Error::Conflict { .. })
    ));
    // Bridge to bridge is not a link.
    let bp3 = w(&n, |t| t.create_port(b, port(serde_json::json!({}))))
        .unwrap()
        .id;
    assert_eq!(field(w(&n, |t| t.link(bp2, bp3)).unwrap_err()), "peer_id");
    // Same device is not a link.
    let rp2 = w(&n, |t| {
        t.create_port(r, port(serde_json::json!({"address": "10.1.0.1/24"})))
    })
    .unwrap()
    .id;
    let rp3 = w(&n, |t| {
        t.create_port(r, port(serde_json::json!({"address": "10.2.0.1/24"})))
    })
    .unwrap()
    .id;
    assert_eq!(field(w(&n, |t| t.link(rp2, rp3)).unwrap_err()), "peer_id");
    // Linked ports cannot be bound, bound ports cannot be linked.
    let h = w(&n, |t| t.create_host(host("h1"))).unwrap().id;
    let bind = |iface: &str| Binding {
        host_id: h,
        interface_name: iface.into(),
    };
    assert!(matches!(
        w(&n, |t| t.bind(bp, bind("veth0"))),
        Err(Error::Conflict { .. })
    ));
    w(&n, |t| t.bind(bp2, bind("veth0"))).unwrap();
    assert!(matches!(
        w(&n, |t| t.link(rp2, bp2)),
        Err(Error::Conflict { .. })
    ));
    // One interface, one port.
    assert_eq!(
        field(w(&n, |t| t.bind(bp3, bind("veth0"))).unwrap_err()),
        "interface_name"
    );
    assert_eq!(n.snapshot().port_by_binding(h, "veth0").unwrap().id, bp2);
    // Deleting a linked port or a host with bindings is refused, naming the referrer.
    assert_eq!(referrer(w(&n, |t| t.delete_port(rp))), "port");
    assert_eq!(referrer(w(&n, |t| t.delete_host(h))), "port");
    w(&n, |t| t.unlink(bp)).unwrap();
    assert_eq!(n.snapshot().get::<Port>(rp).unwrap().peer_id, None);
    w(&n, |t| t.delete_port(rp)).unwrap();
}

#[test]
fn routes_need_their_routers_port() {
    let n = net();
    let (r, _, rp, bp) = fixture(&n);
    let route = |v: serde_json::Value| -> Route { serde_json::from_value(v).unwrap() };
    let e = w(&n, |t| {
        t.create_route(r, route(serde_json::json!({"dst": "10.5.0.0/16"})))
    });
    assert_eq!(field(e.unwrap_err()), "next_hop_port");
    let e = w(&n, |t| {
        t.create_route(
            r,
            route(serde_json::json!({"dst": "10.5.0.0/16", "next_hop_port": bp})),
        )
    });
    assert_eq!(field(e.unwrap_err()), "next_hop_port");
    let e = w(&n, |t| {
        t.create_route(
            r,
            route(serde_json::json!({"dst": "10.5.0.1/16", "next_hop_port": rp})),
        )
    });
    assert_eq!(field(e.unwrap_err()), "dst");
    let e = w(&n, |t| {
        t.create_route(
            r,
            route(serde_json::json!({"dst": "10.5.0.0/16", "next_hop_port": rp, "next_hop_gateway": "10.9.9.9"})),
        )
    });
    assert_eq!(field(e.unwrap_err()), "next_hop_gateway");
    let ok = w(&n, |t| {
        t.create_route(
            r,
            route(serde_json::json!({"dst": "10.5.0.0/16", "next_hop_port": rp, "next_hop_gateway": "10.0.0.254"})),
        )
    })
    .unwrap();
    assert_eq!(n.snapshot().routes_of(r).next().unwrap().id, ok.id);
    // Renumbering the port would strand the gateway.
    let e = w(&n, |t| {
        let mut p = Port::clone(t.snapshot().get::<Port>(rp).unwrap());
        p.address = Some("10.7.0.1/24".parse().unwrap());
        t.update_port(p)
    });
    assert_eq!(field(e.unwrap_err()), "address");
    let bh = w(&n, |t| {
        t.create_route(
            r,
            route(serde_json::json!({"dst": "0.0.0.0/0", "type": "blackhole"})),
        )
    });
    assert!(bh.is_ok());
    assert_eq!(referrer(w(&n, |t| t.delete_port(rp))), "route");
    // Deleting the router cascades its routes, once its ports are gone.
    w(&n, |t| t.delete_route(ok.id)).unwrap();
    w(&n, |t| t.delete_port(rp)).unwrap();
    w(&n, |t| t.delete_router(r)).unwrap();
    assert_eq!(n.snapshot().list::<Route>().count(), 0);
}

#[test]
fn rules_positions_jumps_and_cycles() {
    let n = net();
    let (a, b, c) = w(&n, |t| {
        let mk = |name: &str| Chain {
            id: Uuid::nil(),
            name: name.into(),
            rule_ids: vec![],
        };
        Ok((
            t.create_chain(mk("a"))?.id,
            t.create_chain(mk("b"))?.id,
            t.create_chain(mk("c"))?.id,
        ))
    })
    .unwrap();
    let r1 = w(&n, |t| {
        t.create_rule(a, rule(serde_json::json!({"action": "accept"})))
    })
    .unwrap();
    let r0 = w(&n, |t| {
        t.create_rule(
            a,
            rule(serde_json::json!({"action": "drop", "position": 1})),
        )
    })
    .unwrap();
    assert_eq!(r0.position, 1);
    assert_eq!(n.snapshot().rule_with_position(r1.id).unwrap().position, 2);
    let e = w(&n, |t| {
        t.create_rule(
            a,
            rule(serde_json::json!({"action": "drop", "position": 9})),
        )
    });
    assert_eq!(field(e.unwrap_err()), "position");
    // a → b → c, then c → a is a cycle, and so is a → a.
    w(&n, |t| {
        t.create_rule(
            a,
            rule(serde_json::json!({"action": "jump", "jump_chain_id": b})),
        )
    })
    .unwrap();
    w(&n, |t| {
        t.create_rule(
            b,
            rule(serde_json::json!({"action": "jump", "jump_chain_id": c})),
        )
    })
    .unwrap();
    for (from, to) in [(c, a), (a, a), (c, b)] {
        let e = w(&n, |t| {
            t.create_rule(
                from,
                rule(serde_json::json!({"action": "jump", "jump_chain_id": to})),
            )
        });
        assert_eq!(field(e.unwrap_err()), "jump_chain_id");
    }
    let e = w(&n, |t| {
        t.create_rule(a, rule(serde_json::json!({"action": "jump"})))
    });
    assert_eq!(field(e.unwrap_err()), "jump_chain_id");
    let e = w(&n, |t| {
        t.create_rule(
            a,
            rule(serde_json::json!({"action": "accept", "jump_chain_id": b})),
        )
    });
    assert_eq!(field(e.unwrap_err()), "jump_chain_id");
    assert_eq!(referrer(w(&n, |t| t.delete_chain(b))), "rule");
    // Moving a rule.
    let moved = w(&n, |t| {
        let mut r = Rule::clone(t.snapshot().get::<Rule>(r1.id).unwrap());
        r.position = 1;
        t.update_rule(r)
    })
    .unwrap();
    assert_eq!(moved.position, 1);
    let order: Vec<Uuid> = n.snapshot().rules_of(a).map(|r| r.id).collect();
    assert_eq!(&order[..2], &[r1.id, r0.id]);
    // Deleting chain a cascades its rules, and then b is free.
    w(&n, |t| t.delete_chain(a)).unwrap();
    w(&n, |t| t.delete_chain(b)).unwrap();
    assert_eq!(n.snapshot().list::<Rule>().count(), 0);
}

#[test]
fn rule_conditions_and_nat_targets_are_checked() {
    let n = net();
    let c = w(&n, |t| {
        t.create_chain(Chain {
            id: Uuid::nil(),
            name: "c".into(),
            rule_ids: vec![],
        })
    })
    .unwrap()
    .id;
    let cases = [
        (serde_json::json!({"action": "dnat"}), "nat_targets"),
        (
            serde_json::json!({"action": "accept", "nat_targets": [{"address_from": "1.1.1.1", "address_to": "1.1.1.1"}]}),
            "nat_targets",
        ),
        (
            serde_json::json!({"action": "snat", "nat_targets": [{"address_from": "1.1.1.2", "address_to": "1.1.1.1"}]}),
            "nat_targets[0].address_to",
        ),
        (
            serde_json::json!({"action": "snat", "nat_targets": [{"address_from": "1.1.1.1", "address_to": "::1"}]}),
            "nat_targets[0].address_to",
        ),
        (
            serde_json::json!({"action": "snat", "nat_targets": [{"address_from": "1.1.1.1", "address_to": "1.1.1.1", "port_from": 200, "port_to": 100}]}),
            "nat_targets[0].port_to",
        ),
        (
            serde_json::json!({"action": "drop", "tp_dst": {"start": 90, "end": 80}}),
            "tp_dst.end",
        ),
        (
            serde_json::json!({"action": "drop", "nw_src": "10.0.0.1/8"}),
            "nw_src",
        ),
        (
            serde_json::json!({"action": "drop", "in_ports": [Uuid::new_v4()]}),
            "in_ports[0]",
        ),
        (
            serde_json::json!({"action": "drop", "port_group_id": Uuid::new_v4()}),
            "port_group_id",
        ),
        (
            serde_json::json!({"action": "drop", "ip_addr_group_dst": Uuid::new_v4()}),
            "ip_addr_group_dst",
        ),
        (
            serde_json::json!({"action": "drop", "match_forward_flow": true, "match_return_flow": true}),
            "match_return_flow",
        ),
    ];
    for (body, want) in cases {
        let e = w(&n, |t| t.create_rule(c, rule(body.clone()))).unwrap_err();
        assert_eq!(field(e), want, "{body}");
    }
    let ok = w(&n, |t| {
        t.create_rule(
            c,
            rule(serde_json::json!({"action": "snat", "nat_targets": [{"address_from": "1.1.1.1", "address_to": "1.1.1.9", "port_from": 1024, "port_to": 65535}]})),
        )
    });
    assert!(ok.is_ok());
}

#[test]
fn groups_and_their_references() {
    let n = net();
    let (_, _, rp, bp) = fixture(&n);
    let pg: PortGroup =
        serde_json::from_value(serde_json::json!({"name": "g", "port_ids": [rp, bp]})).unwrap();
    let pg = w(&n, |t| t.create_port_group(pg)).unwrap().id;
    let dup: PortGroup =
        serde_json::from_value(serde_json::json!({"name": "g", "port_ids": [rp, rp]})).unwrap();
    assert_eq!(
        field(w(&n, |t| t.create_port_group(dup)).unwrap_err()),
        "port_ids[1]"
    );
    assert_eq!(referrer(w(&n, |t| t.delete_port(bp))), "port group");
    let ag: IpAddrGroup =
        serde_json::from_value(serde_json::json!({"name": "a", "addresses": ["10.0.0.1"]}))
            .unwrap();
    let ag = w(&n, |t| t.create_ip_addr_group(ag)).unwrap().id;
    let c = w(&n, |t| {
        t.create_chain(Chain {
            id: Uuid::nil(),
            name: "c".into(),
            rule_ids: vec![],
        })
    })
    .unwrap()
    .id;
    w(&n, |t| {
        t.create_rule(
            c,
            rule(
                serde_json::json!({"action": "drop", "port_group_id": pg, "ip_addr_group_src": ag}),
            ),
        )
    })
    .unwrap();
    assert!(matches!(
        w(&n, |t| t.delete_port_group(pg)),
        Err(Error::Referenced { .. })
    ));
    assert!(matches!(
        w(&n, |t| t.delete_ip_addr_group(ag)),
        Err(Error::Referenced { .. })
    ));
}

#[test]
fn filters_reference_chains() {
    let n = net();
    let (r, _, _, _) = fixture(&n);
    let mut rr = Router::clone(n.snapshot().get::<Router>(r).unwrap());
    rr.inbound_filter_id = Some(Uuid::new_v4());
    assert_eq!(
        field(w(&n, |t| t.update_router(rr.clone())).unwrap_err()),
        "inbound_filter_id"
    );
    let c = w(&n, |t| {
        t.create_chain(Chain {
            id: Uuid::nil(),
            name: "c".into(),
            rule_ids: vec![],
        })
    })
    .unwrap()
    .id;
    rr.inbound_filter_id = Some(c);
    w(&n, |t| t.update_router(rr)).unwrap();
    assert_eq!(referrer(w(&n, |t| t.delete_chain(c))), "router");
    assert_eq!(referrer(w(&n, |t| t.delete_router(r))), "port");
}

#[test]
fn dhcp_subnets_and_hosts() {
    let n = net();
    let (_, b, _, _) = fixture(&n);
    let sub = |v: serde_json::Value| -> DhcpSubnet { serde_json::from_value(v).unwrap() };
    let cases = [
        (serde_json::json!({"subnet": "fd00::/64"}), "subnet"),
        (serde_json::json!({"subnet": "10.0.0.1/24"}), "subnet"),
        (
            serde_json::json!({"subnet": "10.0.0.0/24", "gateway": "10.1.0.1"}),
            "gateway",
        ),
        (
            serde_json::json!({"subnet": "10.0.0.0/24", "mtu": 10}),
            "mtu",
        ),
        (
            serde_json::json!({"subnet": "10.0.0.0/24", "opt121_routes": [{"dest": "1.2.3.4/8", "gateway": "10.0.0.1"}]}),
            "opt121_routes[0].dest",
        ),
    ];
    for (body, want) in cases {
        let e = w(&n, |t| t.create_dhcp_subnet(b, sub(body.clone()))).unwrap_err();
        assert_eq!(field(e), want, "{body}");
    }
    let d = w(&n, |t| {
        t.create_dhcp_subnet(
            b,
            sub(serde_json::json!({"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"})),
        )
    })
    .unwrap()
    .id;
    let e = w(&n, |t| {
        t.create_dhcp_subnet(b, sub(serde_json::json!({"subnet": "10.0.0.128/25"})))
    });
    assert_eq!(field(e.unwrap_err()), "subnet");
    let h = |mac: &str, ip: &str| DhcpHost {
        mac: mac.parse().unwrap(),
        ip: ip.parse().unwrap(),
        name: None,
    };
    w(&n, |t| {
        t.put_dhcp_host(d, h("02:00:00:00:00:01", "10.0.0.10"), false)
    })
    .unwrap();
    assert_eq!(
        field(
            w(&n, |t| t.put_dhcp_host(
                d,
                h("02:00:00:00:00:01", "10.0.0.11"),
                false
            ))
            .unwrap_err()
        ),
        "mac"
    );
    assert_eq!(
        field(
            w(&n, |t| t.put_dhcp_host(
                d,
                h("02:00:00:00:00:02", "10.0.0.10"),
                false
            ))
            .unwrap_err()
        ),
        "ip"
    );
    assert_eq!(
        field(
            w(&n, |t| t.put_dhcp_host(
                d,
                h("02:00:00:00:00:02", "10.9.0.10"),
                false
            ))
            .unwrap_err()
        ),
        "ip"
    );
    assert_eq!(
        n.snapshot().dhcp_subnets_of(b).next().unwrap().hosts.len(),
        1
    );
    // Deleting the bridge (once its ports are gone) takes its subnets along.
    let ports: Vec<Uuid> = n.snapshot().ports_of(b).map(|p| p.id).collect();
    for p in ports {
        w(&n, |t| t.delete_port(p)).unwrap();
    }
    w(&n, |t| t.delete_bridge(b)).unwrap();
    assert_eq!(n.snapshot().list::<DhcpSubnet>().count(), 0);
}

#[test]
fn tunnel_zone_members() {
    let n = net();
    let h1 = w(&n, |t| t.create_host(host("h1"))).unwrap().id;
    let h2 = w(&n, |t| t.create_host(host("h2"))).unwrap().id;
    let z = w(&n, |t| {
        t.create_tunnel_zone(TunnelZone {
            id: Uuid::nil(),
            name: "z".into(),
            tunnel_type: TunnelType::Gre,
            members: vec![],
        })
    })
    .unwrap()
    .id;
    let m = |h: Uuid, ip: &str| TunnelZoneMember {
        host_id: h,
        ip: ip.parse().unwrap(),
    };
    w(&n, |t| t.set_member(z, m(h1, "192.0.2.1"))).unwrap();
    assert_eq!(
        field(w(&n, |t| t.set_member(z, m(h2, "192.0.2.1"))).unwrap_err()),
        "ip"
    );
    assert_eq!(
        field(w(&n, |t| t.set_member(z, m(Uuid::new_v4(), "192.0.2.3"))).unwrap_err()),
        "host_id"
    );
    assert_eq!(referrer(w(&n, |t| t.delete_host(h1))), "tunnel zone");
    let s = n.snapshot();
    let zone = s.tunnel_zones().next().unwrap();
    assert_eq!(zone.members.len(), 1);
    assert_eq!(s.hosts().count(), 2);
    w(&n, |t| t.remove_member(z, h1)).unwrap();
    w(&n, |t| t.delete_host(h1)).unwrap();
}

#[test]
fn failed_writes_change_nothing_and_feed_sees_each_commit() {
    let n = net();
    let mut rx = n.subscribe();
    let before = n.snapshot();
    let e = w(&n, |t| {
        t.create_bridge(bridge("ok"))?;
        t.create_port(Uuid::new_v4(), port(serde_json::json!({})))
    });
    assert!(e.is_err());
    assert_eq!(n.snapshot().revision(), before.revision());
    assert_eq!(n.snapshot().list::<Bridge>().count(), 0);
    assert!(!rx.has_changed().unwrap());
    let (b, rev) = n.write(|t| t.create_bridge(bridge("b"))).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().revision(), rev);
    assert_eq!(n.snapshot().mod_revision(b.id), rev);
    // Readers keep their snapshot while writers move on.
    assert_eq!(before.list::<Bridge>().count(), 0);
    let e = n.write(|t| t.expect_revision::<Bridge>(b.id, rev + 7));
    assert!(matches!(e, Err(Error::RevisionMismatch { .. })));
}

#[test]
fn reopen_from_redb_keeps_ids_keys_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let (ids, keys) = {
        let n = Network::open(Arc::new(RedbStore::open(dir.path()).unwrap())).unwrap();
        let (r, b, rp, bp) = fixture(&n);
        w(&n, |t| t.link(rp, bp)).unwrap();
        let s = n.snapshot();
        let keys: Vec<(Uuid, u32)> = s.list::<Port>().map(|p| (p.id, p.tunnel_key)).collect();
        ((r, b, rp, bp), keys)
    };
    let n = Network::open(Arc::new(RedbStore::open(dir.path()).unwrap())).unwrap();
    let s = n.snapshot();
    let again: Vec<(Uuid, u32)> = s.list::<Port>().map(|p| (p.id, p.tunnel_key)).collect();
    assert_eq!(keys, again);
    assert_eq!(s.ports_of(ids.0).next().unwrap().id, ids.2);
    assert_eq!(s.get::<Port>(ids.3).unwrap().peer_id, Some(ids.2));
    // The allocator cursor survived too: a new port gets a fresh key.
    let p = w(&n, |t| t.create_port(ids.1, port(serde_json::json!({})))).unwrap();
    assert!(keys.iter().all(|(_, k)| *k != p.tunnel_key));
}

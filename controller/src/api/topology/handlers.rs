//! The handlers behind [`super::routes`]: generic CRUD over [`super::Crud`] resources, plus
//! links, bindings, tunnel zone members and DHCP hosts, which live inside other records.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use axum::Json;
use topology::model::*;
use topology::{Network, Resource};
use uuid::Uuid;

use super::extract::{etag, Body, IfMatch, P};
use super::{write, Child, Crud, Runtime, TopLevel};
use crate::api::ApiError;

type Created<T> = (StatusCode, HeaderMap, Json<T>);
type Item<T> = (HeaderMap, Json<T>);

fn check_id(path: Uuid, body: Uuid) -> Result<(), ApiError> {
    if !body.is_nil() && body != path {
        return Err(ApiError::invalid("id", "differs from the id in the path"));
    }
    Ok(())
}

pub async fn list<R: Crud>(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
) -> Json<Vec<R>> {
    let s = net.snapshot();
    Json(
        s.list::<R>()
            .map(|r| {
                let mut v = R::view(&s, r);
                v.annotate(&rt);
                v
            })
            .collect(),
    )
}

pub async fn create<R: TopLevel>(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    Body(v): Body<R>,
) -> Result<Created<R>, ApiError> {
    let (mut v, rev) = write(&net, move |t| R::create(t, v)).await?;
    v.annotate(&rt);
    Ok((StatusCode::CREATED, etag(rev), Json(v)))
}

pub async fn read<R: Crud>(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(id): P<Uuid>,
) -> Result<Item<R>, ApiError> {
    let s = net.snapshot();
    let mut v = R::view(&s, s.find::<R>(id)?);
    v.annotate(&rt);
    Ok((etag(s.mod_revision(id)), Json(v)))
}

pub async fn update<R: Crud>(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(id): P<Uuid>,
    IfMatch(expected): IfMatch,
    Body(mut v): Body<R>,
) -> Result<Item<R>, ApiError> {
    check_id(id, v.id())?;
    v.set_id(id);
    let (mut v, rev) = write(&net, move |t| {
        if let Some(e) = expected {
            t.expect_revision::<R>(id, e)?;
        }
        R::update(t, v)
    })
    .await?;
    v.annotate(&rt);
    Ok((etag(rev), Json(v)))
}

pub async fn delete<R: Crud>(
    State(net): State<Network>,
    P(id): P<Uuid>,
    IfMatch(expected): IfMatch,
) -> Result<StatusCode, ApiError> {
    write(&net, move |t| {
        if let Some(e) = expected {
            t.expect_revision::<R>(id, e)?;
        }
        R::delete(t, id)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_children<Parent: Resource, C: Child>(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(parent): P<Uuid>,
) -> Result<Json<Vec<C>>, ApiError> {
    let s = net.snapshot();
    s.find::<Parent>(parent)?;
    let mut v = C::children(&s, parent);
    for c in &mut v {
        c.annotate(&rt);
    }
    Ok(Json(v))
}

pub async fn create_child<Parent: Resource, C: Child>(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(parent): P<Uuid>,
    Body(v): Body<C>,
) -> Result<Created<C>, ApiError> {
    let (mut v, rev) = write(&net, move |t| {
        t.snapshot().find::<Parent>(parent)?;
        C::create_in(t, parent, v)
    })
    .await?;
    v.annotate(&rt);
    Ok((StatusCode::CREATED, etag(rev), Json(v)))
}

// ---- DHCP subnets (nested under their bridge) ----

fn dhcp_of(net: &Network, bridge: Uuid, subnet: Uuid) -> Result<(), ApiError> {
    let s = net.snapshot();
    s.find::<Bridge>(bridge)?;
    match s.get::<DhcpSubnet>(subnet) {
        Some(d) if d.bridge_id == bridge => Ok(()),
        _ => Err(topology::Error::NotFound {
            kind: "DHCP subnet",
            id: subnet.to_string(),
        }
        .into()),
    }
}

pub async fn read_dhcp(
    State(net): State<Network>,
    rt: Extension<Runtime>,
    P((bridge, subnet)): P<(Uuid, Uuid)>,
) -> Result<Item<DhcpSubnet>, ApiError> {
    dhcp_of(&net, bridge, subnet)?;
    read::<DhcpSubnet>(State(net), rt, P(subnet)).await
}

pub async fn update_dhcp(
    State(net): State<Network>,
    rt: Extension<Runtime>,
    P((bridge, subnet)): P<(Uuid, Uuid)>,
    m: IfMatch,
    body: Body<DhcpSubnet>,
) -> Result<Item<DhcpSubnet>, ApiError> {
    dhcp_of(&net, bridge, subnet)?;
    update::<DhcpSubnet>(State(net), rt, P(subnet), m, body).await
}

pub async fn delete_dhcp(
    State(net): State<Network>,
    P((bridge, subnet)): P<(Uuid, Uuid)>,
    m: IfMatch,
) -> Result<StatusCode, ApiError> {
    dhcp_of(&net, bridge, subnet)?;
    delete::<DhcpSubnet>(State(net), P(subnet), m).await
}

pub async fn list_dhcp_hosts(
    State(net): State<Network>,
    P((bridge, subnet)): P<(Uuid, Uuid)>,
) -> Result<Json<Vec<DhcpHost>>, ApiError> {
    dhcp_of(&net, bridge, subnet)?;
    let s = net.snapshot();
    Ok(Json(s.find::<DhcpSubnet>(subnet)?.hosts.clone()))
}

pub async fn create_dhcp_host(
    State(net): State<Network>,
    P((bridge, subnet)): P<(Uuid, Uuid)>,
    Body(h): Body<DhcpHost>,
) -> Result<Created<DhcpHost>, ApiError> {
    dhcp_of(&net, bridge, subnet)?;
    let (h, rev) = write(&net, move |t| t.put_dhcp_host(subnet, h, false)).await?;
    Ok((StatusCode::CREATED, etag(rev), Json(h)))
}

pub async fn read_dhcp_host(
    State(net): State<Network>,
    P((bridge, subnet, mac)): P<(Uuid, Uuid, MacAddr)>,
) -> Result<Item<DhcpHost>, ApiError> {
    dhcp_of(&net, bridge, subnet)?;
    let s = net.snapshot();
    let d = s.find::<DhcpSubnet>(subnet)?;
    let h = d
        .hosts
        .iter()
        .find(|h| h.mac == mac)
        .ok_or_else(|| ApiError::not_found(format!("DHCP host {mac} not found")))?;
    Ok((etag(s.mod_revision(subnet)), Json(h.clone())))
}

pub async fn update_dhcp_host(
    State(net): State<Network>,
    P((bridge, subnet, mac)): P<(Uuid, Uuid, MacAddr)>,
    IfMatch(expected): IfMatch,
    Body(h): Body<DhcpHost>,
) -> Result<Item<DhcpHost>, ApiError> {
    dhcp_of(&net, bridge, subnet)?;
    if h.mac != mac {
        return Err(ApiError::invalid("mac", "differs from the MAC in the path"));
    }
    let (h, rev) = write(&net, move |t| {
        if let Some(e) = expected {
            t.expect_revision::<DhcpSubnet>(subnet, e)?;
        }
        t.put_dhcp_host(subnet, h, true)
    })
    .await?;
    Ok((etag(rev), Json(h)))
}

pub async fn delete_dhcp_host(
    State(net): State<Network>,
    P((bridge, subnet, mac)): P<(Uuid, Uuid, MacAddr)>,
) -> Result<StatusCode, ApiError> {
    dhcp_of(&net, bridge, subnet)?;
    write(&net, move |t| t.delete_dhcp_host(subnet, mac)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- links and bindings ----

pub async fn link(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(id): P<Uuid>,
    Body(l): Body<Link>,
) -> Result<Item<Port>, ApiError> {
    let (p, rev) = write(&net, move |t| t.link(id, l.peer_id)).await?;
    let mut p = Port::clone(&p);
    p.annotate(&rt);
    Ok((etag(rev), Json(p)))
}

pub async fn unlink(State(net): State<Network>, P(id): P<Uuid>) -> Result<StatusCode, ApiError> {
    write(&net, move |t| t.unlink(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn read_binding(
    State(net): State<Network>,
    P(id): P<Uuid>,
) -> Result<Json<Binding>, ApiError> {
    let s = net.snapshot();
    let p = s.find::<Port>(id)?;
    match (p.host_id, &p.interface_name) {
        (Some(host_id), Some(i)) => Ok(Json(Binding {
            host_id,
            interface_name: i.clone(),
        })),
        _ => Err(ApiError::not_found(format!("port {id} is not bound"))),
    }
}

pub async fn bind(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(id): P<Uuid>,
    Body(b): Body<Binding>,
) -> Result<Item<Port>, ApiError> {
    let (p, rev) = write(&net, move |t| t.bind(id, b)).await?;
    let mut p = Port::clone(&p);
    p.annotate(&rt);
    Ok((etag(rev), Json(p)))
}

pub async fn unbind(State(net): State<Network>, P(id): P<Uuid>) -> Result<StatusCode, ApiError> {
    write(&net, move |t| t.unbind(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- tunnel zone members ----

pub async fn list_members(
    State(net): State<Network>,
    P(zone): P<Uuid>,
) -> Result<Json<Vec<TunnelZoneMember>>, ApiError> {
    let s = net.snapshot();
    Ok(Json(s.find::<TunnelZone>(zone)?.members.clone()))
}

pub async fn add_member(
    State(net): State<Network>,
    P(zone): P<Uuid>,
    Body(m): Body<TunnelZoneMember>,
) -> Result<Created<TunnelZoneMember>, ApiError> {
    let (m, rev) = write(&net, move |t| {
        let z = t.snapshot().find::<TunnelZone>(zone)?;
        if z.members.iter().any(|x| x.host_id == m.host_id) {
            return Err(topology::Error::Conflict {
                message: format!("host {} is already a member of zone {zone}", m.host_id),
                field: Some("host_id".into()),
            });
        }
        t.set_member(zone, m)
    })
    .await?;
    Ok((StatusCode::CREATED, etag(rev), Json(m)))
}

fn member(net: &Network, zone: Uuid, host: Uuid) -> Result<TunnelZoneMember, ApiError> {
    let s = net.snapshot();
    s.find::<TunnelZone>(zone)?
        .members
        .iter()
        .find(|m| m.host_id == host)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("host {host} is not a member of zone {zone}")))
}

pub async fn read_member(
    State(net): State<Network>,
    P((zone, host)): P<(Uuid, Uuid)>,
) -> Result<Json<TunnelZoneMember>, ApiError> {
    member(&net, zone, host).map(Json)
}

pub async fn update_member(
    State(net): State<Network>,
    P((zone, host)): P<(Uuid, Uuid)>,
    Body(m): Body<TunnelZoneMember>,
) -> Result<Json<TunnelZoneMember>, ApiError> {
    member(&net, zone, host)?;
    if m.host_id != host {
        return Err(ApiError::invalid(
            "host_id",
            "differs from the host in the path",
        ));
    }
    let (m, _) = write(&net, move |t| t.set_member(zone, m)).await?;
    Ok(Json(m))
}

pub async fn delete_member(
    State(net): State<Network>,
    P((zone, host)): P<(Uuid, Uuid)>,
) -> Result<StatusCode, ApiError> {
    write(&net, move |t| t.remove_member(zone, host)).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- runtime views ----

/// An interface on a host's br-int that carries no logical port (`GET /unbound_interfaces`):
/// the engine drops its packets with one flow.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UnboundInterface {
    /// The host.
    pub host_id: Uuid,
    /// The interface.
    pub interface_name: String,
    /// Its OpenFlow port, if assigned.
    pub ofport: Option<u32>,
    /// Its `external_ids:iface-id`, if any.
    pub iface_id: Option<String>,
    /// `no_iface_id`, `unknown_port`, `bound_elsewhere` or `superseded` (the same port id was
    /// plugged on another host more recently).
    pub reason: String,
}

/// The unbound interfaces of `host`, or of every host.
fn unbound(rt: &Runtime, host: Option<Uuid>) -> Vec<UnboundInterface> {
    rt.bindings()
        .unbound()
        .iter()
        .filter(|u| host.is_none_or(|h| u.host == h))
        .map(|u| UnboundInterface {
            host_id: u.host,
            interface_name: u.interface.clone(),
            ofport: u.ofport,
            iface_id: u.iface_id.clone(),
            reason: u.reason.as_str().to_string(),
        })
        .collect()
}

pub async fn list_unbound(Extension(rt): Extension<Runtime>) -> Json<Vec<UnboundInterface>> {
    Json(unbound(&rt, None))
}

pub async fn list_host_unbound(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(host): P<Uuid>,
) -> Result<Json<Vec<UnboundInterface>>, ApiError> {
    net.snapshot().find::<Host>(host)?;
    Ok(Json(unbound(&rt, Some(host))))
}

/// One learned MAC of a bridge (`GET /bridges/{id}/mac_table`), as the app holds it now.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct MacTableEntry {
    /// The MAC.
    pub mac: MacAddr,
    /// The bridge port it was learned on.
    pub port_id: Uuid,
    /// How many installed flows deliver to it; it expires some time after the last one goes.
    pub flows: u32,
}

impl From<apps::MacEntry> for MacTableEntry {
    fn from(e: apps::MacEntry) -> Self {
        MacTableEntry {
            mac: MacAddr(e.mac),
            port_id: e.port_id,
            flows: e.flows,
        }
    }
}

/// One entry of a router's ARP cache (`GET /routers/{id}/arp_table`), as the app holds it now.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ArpTableEntry {
    /// The neighbour's address.
    #[schema(value_type = String, format = Ipv4)]
    pub ip: std::net::Ipv4Addr,
    /// Its MAC, once known (null while resolving); always present.
    #[schema(required = true)]
    pub mac: Option<MacAddr>,
    /// The router port it is reached through.
    pub port_id: Uuid,
    /// `resolving`, `reachable`, `stale` or `failed`.
    #[schema(schema_with = arp_state_schema)]
    pub state: &'static str,
    /// Seconds until the entry next changes state (expires, goes stale, or is retried).
    pub expires_in_secs: u64,
    /// Packets parked waiting for it.
    pub parked: u64,
}

impl From<apps::ArpEntry> for ArpTableEntry {
    fn from(e: apps::ArpEntry) -> Self {
        ArpTableEntry {
            ip: e.ip,
            mac: e.mac.map(MacAddr),
            port_id: e.port_id,
            state: e.state.as_str(),
            expires_in_secs: e.expires_in_secs,
            // A count of packets cannot exceed u64 on any platform we build for.
            parked: u64::try_from(e.parked).unwrap_or(u64::MAX),
        }
    }
}

/// The schema of an ARP entry's state: the names `apps::ArpState::as_str` gives.
fn arp_state_schema() -> utoipa::openapi::schema::Object {
    use apps::ArpState::{self, *};
    // Exhaustive, so a new state does not compile until it is listed below too.
    let _every = |s: ArpState| match s {
        Resolving | Reachable | Stale | Failed => (),
    };
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(
            "Where the entry stands: `resolving` (requests out, packets may be parked), \
             `reachable`, `stale` (refreshed on next use) or `failed` (no answer: ICMP host \
             unreachable until it expires).",
        ))
        .enum_values(Some(
            [Resolving, Reachable, Stale, Failed].map(ArpState::as_str),
        ))
        .build()
}

/// An answer of the wrong kind is the app's bug, not the client's: a 500 that says so, rather
/// than an empty table that would hide it.
fn wrong_answer(query: &apps::Query, answer: &apps::Answer) -> ApiError {
    let what = match answer {
        apps::Answer::MacTable(v) => format!("a MAC table ({} entries)", v.len()),
        apps::Answer::ArpTable(v) => format!("an ARP table ({} entries)", v.len()),
        apps::Answer::Counters(_) => "its counters".to_string(),
        apps::Answer::Flows(v) => format!("{} flows", v.len()),
        apps::Answer::Trace(_) => "a trace".to_string(),
        apps::Answer::Explain(_) => "an explanation".to_string(),
    };
    ApiError::internal(format!("the app answered {query:?} with {what}"))
}

pub async fn mac_table(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(bridge): P<Uuid>,
) -> Result<Json<Vec<MacTableEntry>>, ApiError> {
    net.snapshot().find::<Bridge>(bridge)?;
    let query = apps::Query::MacTable { bridge };
    match rt.query(&query) {
        None => Ok(Json(Vec::new())),
        Some(apps::Answer::MacTable(v)) => Ok(Json(v.into_iter().map(Into::into).collect())),
        Some(other) => Err(wrong_answer(&query, &other)),
    }
}

pub async fn arp_table(
    State(net): State<Network>,
    Extension(rt): Extension<Runtime>,
    P(router): P<Uuid>,
) -> Result<Json<Vec<ArpTableEntry>>, ApiError> {
    net.snapshot().find::<Router>(router)?;
    let query = apps::Query::ArpTable { router };
    match rt.query(&query) {
        None => Ok(Json(Vec::new())),
        Some(apps::Answer::ArpTable(v)) => Ok(Json(v.into_iter().map(Into::into).collect())),
        Some(other) => Err(wrong_answer(&query, &other)),
    }
}

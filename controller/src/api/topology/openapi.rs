//! The OpenAPI 3.1 document of the topology API, served at `/api/v1/openapi.json`. Schemas come
//! from the model types (utoipa derives); operations come from one table below, and a test
//! checks that every operation in it is routed, so the document and the router cannot drift.

use std::sync::OnceLock;

use axum::Json;
use serde::Serialize;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr,
    Required, ResponseBuilder,
};
use utoipa::ToSchema;

use topology::model::*;

/// The error body of every 4xx/5xx (DESIGN §3).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Details of an error.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `not_found`, `invalid`, `conflict`, `bad_request`, `precondition_failed`…
    pub code: String,
    /// For people.
    pub message: String,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
}

/// What an operation answers on success.
#[derive(Clone, Copy)]
pub enum Success {
    /// 200 with one object.
    One(&'static str),
    /// 200 with an array.
    Many(&'static str),
    /// 201 with one object.
    Created(&'static str),
    /// 204, no body.
    NoContent,
}

/// One documented operation: method, path (under /api/v1), request schema, success.
pub type Operation = (HttpMethod, &'static str, Option<&'static str>, Success);

/// Every operation of the topology API.
pub fn operations() -> Vec<Operation> {
    use HttpMethod::{Delete, Get, Post, Put};
    use Success::*;
    let mut ops: Vec<Operation> = Vec::new();
    let top = [
        ("/hosts", "Host"),
        ("/tunnel_zones", "TunnelZone"),
        ("/bridges", "Bridge"),
        ("/routers", "Router"),
        ("/chains", "Chain"),
        ("/port_groups", "PortGroup"),
        ("/ip_addr_groups", "IpAddrGroup"),
    ];
    for (coll, schema) in top {
        let item: &'static str = Box::leak(format!("{coll}/{{id}}").into_boxed_str());
        ops.push((Get, coll, None, Many(schema)));
        ops.push((Post, coll, Some(schema), Created(schema)));
        ops.push((Get, item, None, One(schema)));
        ops.push((Put, item, Some(schema), One(schema)));
        ops.push((Delete, item, None, NoContent));
    }
    for (item, schema) in [
        ("/ports/{id}", "Port"),
        ("/routes/{id}", "Route"),
        ("/rules/{id}", "Rule"),
        ("/bridges/{id}/dhcp/{subnet_id}", "DhcpSubnet"),
    ] {
        ops.push((Get, item, None, One(schema)));
        ops.push((Put, item, Some(schema), One(schema)));
        ops.push((Delete, item, None, NoContent));
    }
    for (coll, schema) in [
        ("/bridges/{id}/ports", "Port"),
        ("/routers/{id}/ports", "Port"),
        ("/routers/{id}/routes", "Route"),
        ("/chains/{id}/rules", "Rule"),
        ("/bridges/{id}/dhcp", "DhcpSubnet"),
        ("/bridges/{id}/dhcp/{subnet_id}/hosts", "DhcpHost"),
        ("/tunnel_zones/{id}/members", "TunnelZoneMember"),
    ] {
        ops.push((Get, coll, None, Many(schema)));
        ops.push((Post, coll, Some(schema), Created(schema)));
    }
    for (item, schema) in [
        ("/bridges/{id}/dhcp/{subnet_id}/hosts/{mac}", "DhcpHost"),
        ("/tunnel_zones/{id}/members/{host_id}", "TunnelZoneMember"),
    ] {
        ops.push((Get, item, None, One(schema)));
        ops.push((Put, item, Some(schema), One(schema)));
        ops.push((Delete, item, None, NoContent));
    }
    ops.extend([
        (Get, "/ports", None, Many("Port")),
        (Post, "/ports/{id}/link", Some("Link"), One("Port")),
        (Delete, "/ports/{id}/link", None, NoContent),
        (Get, "/ports/{id}/binding", None, One("Binding")),
        (Put, "/ports/{id}/binding", Some("Binding"), One("Port")),
        (Delete, "/ports/{id}/binding", None, NoContent),
        (Get, "/unbound_interfaces", None, Many("UnboundInterface")),
        (
            Get,
            "/hosts/{id}/unbound_interfaces",
            None,
            Many("UnboundInterface"),
        ),
        (Get, "/bridges/{id}/mac_table", None, Many("MacTableEntry")),
        (Get, "/routers/{id}/arp_table", None, Many("ArpTableEntry")),
        // `api::trace`: seeing what the network does.
        (Post, "/trace", Some("TraceRequest"), One("Trace")),
        (Get, "/flows/{cookie}", None, One("FlowExplanation")),
        (Get, "/ports/{id}/stats", None, One("PortStats")),
        (Get, "/revision", None, One("RevisionStatus")),
    ]);
    ops
}

fn schemas() -> Vec<(String, RefOr<Schema>)> {
    fn add<T: ToSchema>(v: &mut Vec<(String, RefOr<Schema>)>) {
        v.push((T::name().into_owned(), T::schema()));
        T::schemas(v);
    }
    let mut v = Vec::new();
    add::<Host>(&mut v);
    add::<TunnelZone>(&mut v);
    add::<TunnelZoneMember>(&mut v);
    add::<Bridge>(&mut v);
    add::<Router>(&mut v);
    add::<Port>(&mut v);
    add::<Link>(&mut v);
    add::<Binding>(&mut v);
    add::<super::handlers::UnboundInterface>(&mut v);
    add::<super::handlers::MacTableEntry>(&mut v);
    add::<super::handlers::ArpTableEntry>(&mut v);
    add::<crate::applied::RevisionStatus>(&mut v);
    add::<Route>(&mut v);
    add::<Chain>(&mut v);
    add::<Rule>(&mut v);
    add::<PortGroup>(&mut v);
    add::<IpAddrGroup>(&mut v);
    add::<DhcpSubnet>(&mut v);
    add::<DhcpHost>(&mut v);
    add::<MacAddr>(&mut v);
    add::<ErrorBody>(&mut v);
    add::<crate::api::trace::TraceRequest>(&mut v);
    let mut v = closed(v);
    // Answers of `api::trace`: documented objects whose detail (steps, provenance) grows with
    // the engine; open, as clients must ignore what they do not know.
    for (name, what) in [
        (
            "Trace",
            "A trace: `ingress`, `packet` (ovs-ofctl syntax), `assumed` defaults, `steps` \
             (`depth`, `kind`, `text`), `result` (`verdict`, `drop_reason`, `outputs`) and \
             `flow` (what the ingress host would install, `ofctl` text), or null when the \
             ingress port is not bound.",
        ),
        (
            "FlowExplanation",
            "An installed flow explained: `cookie`, `dpid`, `provenance`, `trace` (its packet \
             traced again now), `installed` (the switch's flow), `consistent` and \
             `differences`.",
        ),
        (
            "PortStats",
            "Counters of a port's flows: `flows`, `rx_packets`, `rx_bytes`, `drops` by reason.",
        ),
    ] {
        v.push((
            name.to_owned(),
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .description(Some(what))
                .into(),
        ));
    }
    v
}

/// The schemas with `additionalProperties: false` on every object, as `extract::decode` refuses
/// unknown fields. A flattened type (`Rule` over `Condition`) comes out of utoipa as an `allOf`,
/// where a closed part would refuse the other part's fields: it becomes one closed object.
fn closed(mut v: Vec<(String, RefOr<Schema>)>) -> Vec<(String, RefOr<Schema>)> {
    use utoipa::openapi::schema::{AdditionalProperties, Object, SchemaType};
    let objects: std::collections::BTreeMap<String, Object> = v
        .iter()
        .filter_map(|(name, s)| match s {
            RefOr::T(Schema::Object(o)) => {
                Some((format!("#/components/schemas/{name}"), o.clone()))
            }
            _ => None,
        })
        .collect();
    let close = |o: &mut Object| {
        o.additional_properties = Some(Box::new(AdditionalProperties::FreeForm(false)));
    };
    for (_, s) in &mut v {
        match s {
            RefOr::T(Schema::Object(o)) if o.schema_type == SchemaType::Type(Type::Object) => {
                close(o)
            }
            RefOr::T(Schema::AllOf(all)) => {
                let mut merged = ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(all.description.clone())
                    .build();
                for part in &all.items {
                    let part = match part {
                        RefOr::Ref(r) => objects.get(&r.ref_location),
                        RefOr::T(Schema::Object(o)) => Some(o),
                        _ => None,
                    };
                    if let Some(o) = part {
                        merged.properties.extend(o.properties.clone());
                        merged.required.extend(o.required.iter().cloned());
                    }
                }
                close(&mut merged);
                *s = RefOr::T(Schema::Object(merged));
            }
            _ => {}
        }
    }
    v
}

fn json(schema: impl Into<RefOr<Schema>>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn param(name: &str) -> utoipa::openapi::path::Parameter {
    let schema = if name == "mac" {
        RefOr::Ref(Ref::from_schema_name("MacAddr"))
    } else if name == "cookie" {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^(0x[0-9a-fA-F]{1,16}|[0-9]{1,19})$"))
            .examples([serde_json::json!("0x5354800000000001")])
            .into()
    } else {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Uuid,
            )))
            .into()
    };
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .schema(Some(schema))
        .build()
}

/// The query parameters of every write: wait until applied, for at most `timeout` ms.
fn wait_params() -> [utoipa::openapi::path::Parameter; 2] {
    let wait = ParameterBuilder::new()
        .name("wait")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(
            "Answer only once every connected switch and host has applied the write's \
             revision (504 `timeout` if not within `timeout`; the write stays committed).",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::Boolean)))
        .build();
    let timeout = ParameterBuilder::new()
        .name("timeout")
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(
            "How long `wait=true` waits, in milliseconds (default 10000).",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(super::wait::MAX_TIMEOUT_MS)),
        ))
        .build();
    [wait, timeout]
}

/// The `X-Strowger-Revision` header of a write's answer.
fn revision_header() -> utoipa::openapi::header::Header {
    utoipa::openapi::header::HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .description(Some("The topology revision the write committed."))
        .build()
}

fn build() -> OpenApi {
    let mut paths = Paths::new();
    for (method, path, body, ok) in operations() {
        let mut op = OperationBuilder::new().operation_id(Some(format!(
            "{}{}",
            match method {
                HttpMethod::Get => "get",
                HttpMethod::Post => "post",
                HttpMethod::Put => "put",
                _ => "delete",
            },
            path.replace(['{', '}'], "").replace('/', "_")
        )));
        for seg in path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                op = op.parameter(param(name));
            }
        }
        let writes = method != HttpMethod::Get;
        let waits = writes || path == "/revision";
        if waits {
            for p in wait_params() {
                op = op.parameter(p);
            }
        }
        if let Some(b) = body {
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", json(Ref::from_schema_name(b)))
                    .build(),
            ));
        }
        let ok_response = |r: ResponseBuilder| {
            if writes {
                r.header(super::wait::REVISION_HEADER, revision_header())
            } else {
                r
            }
        };
        op = match ok {
            Success::One(s) => op.response(
                "200",
                ok_response(ResponseBuilder::new().description("OK"))
                    .content("application/json", json(Ref::from_schema_name(s))),
            ),
            Success::Many(s) => op.response(
                "200",
                ResponseBuilder::new().description("OK").content(
                    "application/json",
                    json(ArrayBuilder::new().items(Ref::from_schema_name(s))),
                ),
            ),
            Success::Created(s) => op.response(
                "201",
                ok_response(ResponseBuilder::new().description("Created"))
                    .content("application/json", json(Ref::from_schema_name(s))),
            ),
            Success::NoContent => op.response(
                "204",
                ok_response(ResponseBuilder::new().description("Done")),
            ),
        };
        if waits {
            op = op.response(
                "504",
                ResponseBuilder::new()
                    .description(
                        "`wait=true`: not applied everywhere within `timeout` (the message names \
                         the laggards; the write is committed)",
                    )
                    .content("application/json", json(Ref::from_schema_name("ErrorBody"))),
            );
        }
        for (code, what) in [
            ("400", "Malformed request (JSON syntax, path parameter)"),
            ("404", "Unknown id"),
            (
                "409",
                "Conflicts with the current state, or still referenced",
            ),
            (
                "401",
                "No or an unknown bearer token (`serve --api-token-file`)",
            ),
            (
                "403",
                "A write from another origin (`Origin`), or with a reader token",
            ),
            ("412", "If-Match does not match the record's ETag"),
            ("413", "Body too large"),
            ("415", "A body that is not `Content-Type: application/json`"),
            (
                "421",
                "`Host` is not an IP address, `localhost` or a configured name",
            ),
            ("422", "A value is not acceptable (`field` names it)"),
        ] {
            op = op.response(
                code,
                ResponseBuilder::new()
                    .description(what)
                    .content("application/json", json(Ref::from_schema_name("ErrorBody"))),
            );
        }
        if matches!(path, "/trace" | "/flows/{cookie}" | "/ports/{id}/stats") {
            // They ask the app and the switches.
            for (code, what) in [
                ("502", "A switch's reply did not decode"),
                (
                    "503",
                    "The app does not trace (not the engine), or a switch disconnected",
                ),
                ("504", "A switch did not answer in time"),
            ] {
                op = op.response(
                    code,
                    ResponseBuilder::new()
                        .description(what)
                        .content("application/json", json(Ref::from_schema_name("ErrorBody"))),
                );
            }
        }
        paths.add_path_operation(format!("/api/v1{path}"), vec![method], op.build());
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Strowger topology API")
                .version(env!("CARGO_PKG_VERSION"))
                .build(),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .schemas_from_iter(schemas())
                .build(),
        ))
        .build()
}

/// The document (built once).
pub fn document() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(build)
}

/// `GET /api/v1/openapi.json`.
pub async fn serve() -> Json<&'static OpenApi> {
    Json(document())
}

#[cfg(test)]
mod tests {
    /// Every object schema is closed, as the API refuses unknown fields; `Rule` is one object
    /// holding its own fields and its condition's.
    #[test]
    fn objects_are_closed() {
        let doc = serde_json::to_value(super::document()).expect("JSON");
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for (name, s) in schemas {
            // Answers only, never request bodies: open on purpose (see `schemas`).
            if ["Trace", "FlowExplanation", "PortStats"].contains(&name.as_str()) {
                continue;
            }
            if s["type"] == "object" || s.get("allOf").is_some() {
                assert_eq!(s["additionalProperties"], false, "{name}: {s}");
            }
        }
        let rule = &schemas["Rule"];
        assert_eq!(rule["type"], "object", "{rule}");
        for field in [
            "action",
            "chain_id",
            "nw_proto",
            "inv_nw_proto",
            "cond_invert",
        ] {
            assert!(
                rule["properties"].get(field).is_some(),
                "Rule lacks {field}"
            );
        }
        assert_eq!(rule["required"], serde_json::json!(["action"]));
    }
}

//! The REST surface: discovery, and get/list/watch/create/update/patch/delete on every served
//! resource, under `/api/v1/...` and `/apis/<group>/<version>/...`, as the Kubernetes API
//! conventions lay them out.

mod auth;
mod kubelet;
mod list;
mod patch;
mod watch;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;

use crate::admission::Requester;
use crate::error::{ApiError, Result};
use crate::input::{json_body, object_body};
use crate::rbac::UserInfo;
use crate::resources::ResourceType;
use crate::store::{DryRun, Part, Propagation, Store};
use list::{filter_for, json_response, list, list_items};
use patch::{Apply, patch};
use watch::watch;

/// Kubernetes version the server reports.
pub const KUBERNETES_VERSION: (&str, &str) = ("1", "37");
/// Interval between watch bookmarks when the client allows them.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest watch when the client names no timeout.
pub const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    /// The object store.
    pub store: Arc<Store>,
    /// Who a request's credentials say it is.
    pub authn: Arc<crate::authn::Authenticator>,
    /// The authorizer, rebuilt from the stored RBAC objects when they change.
    pub rbac: Arc<crate::authz::RbacCache>,
    /// Requests whose handler panicked (each answered with a 500 `Status`): zero unless the
    /// server has a bug, which is what the tests of malformed input assert.
    pub panics: Arc<AtomicU64>,
}

/// The API router (without a socket, so tests can call it directly).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/api", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/openapi/v3", get(openapi_index))
        .route("/openapi/v3/{*path}", get(openapi_document))
        .route("/api/{*rest}", any(resource_request))
        .route("/apis/{*rest}", any(resource_request))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::filter,
        ))
        // Outermost, so a panic anywhere in a request's handling becomes a `Status`.
        .layer(CatchPanicLayer::custom(panic_response(
            state.panics.clone(),
        )))
        .with_state(state)
}

/// What a request whose handler panicked is answered: a 500 `Status`, the panic logged and
/// counted. The input checks are meant to leave nothing that reaches it.
fn panic_response(
    panics: Arc<AtomicU64>,
) -> impl FnMut(Box<dyn Any + Send + 'static>) -> Response + Clone {
    move |panic| {
        panics.fetch_add(1, Ordering::Relaxed);
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        tracing::error!(panic = message, "API request handler panicked");
        let status = ApiError::Internal("the server could not handle the request".into()).status();
        (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(status)).into_response()
    }
}

async fn version() -> impl IntoResponse {
    let (major, minor) = KUBERNETES_VERSION;
    axum::Json(json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-vdi.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "n/a (rust)",
        "compiler": "rustc",
        "platform": "linux/amd64",
    }))
}

async fn openapi_index(State(state): State<AppState>) -> impl IntoResponse {
    axum::Json(crate::openapi::index(&state.store.registry))
}

async fn openapi_document(
    State(state): State<AppState>,
    axum::extract::Path(path): axum::extract::Path<String>,
) -> Response {
    match crate::openapi::document(&state.store.registry, &path) {
        Some(doc) => axum::Json(doc).into_response(),
        None => ApiError::NotFound {
            resource: "openapi".into(),
            name: path,
        }
        .into_response(),
    }
}

async fn api_versions() -> impl IntoResponse {
    axum::Json(json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}))
}

async fn api_groups(State(state): State<AppState>) -> impl IntoResponse {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for t in state
        .store
        .registry
        .all()
        .into_iter()
        .filter(|t| !t.group.is_empty())
    {
        match groups.iter_mut().find(|(g, _)| *g == t.group) {
            Some((_, vs)) if !vs.contains(&t.version) => vs.push(t.version),
            Some(_) => {}
            None => groups.push((t.group, vec![t.version])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(name, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
                .collect();
            json!({"name": name, "versions": vs, "preferredVersion": vs[0]})
        })
        .collect();
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
}

fn resource_list(state: &AppState, group: &str, version: &str) -> Result<Response> {
    let types: Vec<ResourceType> = state
        .store
        .registry
        .all()
        .into_iter()
        .filter(|t| t.group == group && t.version == version)
        .collect();
    if types.is_empty() {
        return Err(ApiError::UnknownResource);
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    let resources: Vec<Value> = types.iter().flat_map(ResourceType::discovery).collect();
    Ok(axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources})).into_response())
}

/// Where a request points.
struct Target {
    rt: ResourceType,
    /// Namespace from the path ("" for cluster-scoped or all-namespaces).
    ns: String,
    /// Whether the path named a namespace.
    ns_in_path: bool,
    name: Option<String>,
    sub: Option<String>,
}

fn resolve(state: &AppState, group: &str, version: &str, segs: &[&str]) -> Result<Target> {
    let reg = &state.store.registry;
    if let ["namespaces", ns, plural, rest @ ..] = segs {
        if let Some(rt) = reg.find(group, version, plural).filter(|t| t.namespaced) {
            if rest.len() > 2 {
                return Err(ApiError::UnknownResource);
            }
            return Ok(Target {
                rt,
                ns: (*ns).to_owned(),
                ns_in_path: true,
                name: rest.first().map(|s| (*s).to_owned()),
                sub: rest.get(1).map(|s| (*s).to_owned()),
            });
        }
        // Only a namespace's own subresources follow its name; anything else is no resource
        // (not a namespace named "" or a missing one).
        if !(group.is_empty() && rest.is_empty() && matches!(*plural, "status" | "finalize")) {
            return Err(ApiError::UnknownResource);
        }
    }
    let (plural, rest) = segs.split_first().ok_or(ApiError::UnknownResource)?;
    let rt = reg
        .find(group, version, plural)
        .ok_or(ApiError::UnknownResource)?;
    if rest.len() > 2 {
        return Err(ApiError::UnknownResource);
    }
    Ok(Target {
        rt,
        ns: String::new(),
        ns_in_path: false,
        name: rest.first().map(|s| (*s).to_owned()),
        sub: rest.get(1).map(|s| (*s).to_owned()),
    })
}

/// Every request under `/api/` (the core group) and `/apis/<group>/`: discovery of a group or
/// group version, or a resource operation.
async fn resource_request(
    State(state): State<AppState>,
    method: Method,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    req: Request,
) -> Response {
    let full = req.uri().path().to_owned();
    let requester = req
        .extensions()
        .get::<Requester>()
        .cloned()
        .unwrap_or_else(Requester::admin);
    let user = req
        .extensions()
        .get::<UserInfo>()
        .cloned()
        .unwrap_or_else(|| UserInfo::new(requester.user.clone(), requester.groups.clone()));
    let body = match crate::input::read_body(&headers, req.into_body()).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    // JSON for the handlers: protobuf converted, other types refused (415).
    let content_type = headers.get(header::CONTENT_TYPE);
    let body = match crate::protobuf::request_body(&method, content_type, body) {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    // `/api/v1/...` is the core group: read it as `/apis/<empty group>/v1/...`.
    let (core, rest) = match full.strip_prefix("/apis/") {
        Some(rest) => (false, rest),
        None => (true, full.strip_prefix("/api/").unwrap_or_default()),
    };
    let mut segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if core {
        segs.insert(0, "");
    }
    let call = Call {
        method,
        q: &q,
        headers: &headers,
        body,
        requester,
        user,
    };
    let not_found = || {
        ApiError::NotFound {
            resource: "path".into(),
            name: full.clone(),
        }
        .into_response()
    };
    match segs.as_slice() {
        ["authentication.k8s.io", "v1", "tokenreviews"] if call.method == Method::POST => {
            match auth::token_review(&state, &call.body).await {
                Ok(review) => (StatusCode::CREATED, axum::Json(review)).into_response(),
                Err(e) => e.into_response(),
            }
        }
        [group] if !core => group_discovery(&state, group),
        [group, version] => {
            resource_list(&state, group, version).unwrap_or_else(IntoResponse::into_response)
        }
        [group, version, rest @ ..] if call.method == Method::GET => {
            dispatch(&state, group, version, rest, call).unwrap_or_else(IntoResponse::into_response)
        }
        [group, version, rest @ ..] => {
            // A write waits for its group commit ([`crate::store`]): off the runtime's worker
            // threads, so other requests are served (and their writes join the next
            // transaction) meanwhile.
            blocking(|| dispatch(&state, group, version, rest, call))
                .unwrap_or_else(IntoResponse::into_response)
        }
        _ => not_found(),
    }
}

/// Runs `f`, which may block, on this thread, telling a multi-threaded runtime to move its
/// other tasks elsewhere first (a single-threaded one, as in some tests, just runs it).
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// `/apis/<group>`: the group's versions.
fn group_discovery(state: &AppState, group: &str) -> Response {
    let versions: Vec<Value> = state
        .store
        .registry
        .all()
        .into_iter()
        .filter(|t| t.group == group)
        .map(|t| json!({"groupVersion": t.api_version(), "version": t.version}))
        .collect();
    if versions.is_empty() {
        return ApiError::UnknownResource.into_response();
    }
    axum::Json(json!({"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": versions[0]}))
        .into_response()
}

/// The parts of one resource request.
struct Call<'a> {
    method: Method,
    q: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: Bytes,
    requester: Requester,
    /// Who asked, as authentication (and impersonation) established it.
    user: UserInfo,
}

fn dispatch(
    state: &AppState,
    group: &str,
    version: &str,
    segs: &[&str],
    call: Call<'_>,
) -> Result<Response> {
    let Call {
        method,
        q,
        headers,
        body,
        requester,
        user,
    } = call;
    let t = resolve(state, group, version, segs)?;
    let store = &state.store;
    // `?dryRun=All`: every write this request makes runs, and stores nothing.
    let dry = method != Method::GET
        && (DryRun::requested(q.get("dryRun").map(String::as_str))?
            || (method == Method::DELETE && DryRun::requested_in_options(&body)?));
    let _dry_run = DryRun::enter(dry);
    if crate::metrics::serves(&t.rt) {
        return kubelet::metrics(state, &t, &method, q, headers);
    }
    if t.rt.create_only {
        if method != Method::POST || t.name.is_some() {
            return Err(ApiError::MethodNotAllowed(format!(
                "{} may only be created",
                t.rt.plural
            )));
        }
        let answer = crate::authz::review(&state.rbac, store, &t.rt, &t.ns, &user, &body)?;
        return Ok((StatusCode::CREATED, axum::Json(answer)).into_response());
    }
    match (t.rt.key().as_str(), t.sub.as_deref(), &method) {
        ("pods", Some("binding"), &Method::POST) => return bind_pod(store, &t, &body),
        ("pods", Some("log"), &Method::GET) => return kubelet::pod_log(state, &t, q),
        ("serviceaccounts", Some("token"), &Method::POST) => {
            return auth::token_request(state, &t, &body);
        }
        _ => {}
    }
    let part = match t.sub.as_deref() {
        None => Part::Main,
        Some("status") if t.rt.status_subresource => Part::Status,
        Some(_) => return Err(ApiError::UnknownResource),
    };
    let ok = |v: Value| Ok(axum::Json(v).into_response());
    let created = |v: Value| Ok((StatusCode::CREATED, axum::Json(v)).into_response());
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let as_table = crate::table::wanted(accept);
    match (method, t.name.as_deref()) {
        (Method::GET, Some(name)) if as_table => {
            let obj = store.get(&t.rt, &t.ns, name)?;
            let rv = obj["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            ok(crate::table::render(&t.rt, &[obj], &rv))
        }
        (Method::GET, Some(name)) => Ok(json_response(store.get_json(&t.rt, &t.ns, name)?)),
        (Method::GET, None) if wants_watch(q) => watch(state, &t, q, as_table),
        (Method::GET, None) if as_table => {
            let items = list_items(state, &t, q)?;
            ok(crate::table::render(
                &t.rt,
                &items,
                &store.resource_version().to_string(),
            ))
        }
        (Method::GET, None) => list(state, &t, q),
        (Method::POST, None) => {
            let mut obj = object_body(&body)?;
            crate::schema::prune_request(&t.rt, &mut obj, q)?;
            obj["apiVersion"] = json!(t.rt.api_version());
            crate::apply::on_create(&mut obj, manager(q), "Update");
            created(store.create_as(&t.rt, &t.ns, obj, &requester)?)
        }
        (Method::PUT, Some(name)) => {
            let mut obj = object_body(&body)?;
            crate::schema::prune_request(&t.rt, &mut obj, q)?;
            if part == Part::Main {
                obj["apiVersion"] = json!(t.rt.api_version());
                crate::apply::on_update(&store.get(&t.rt, &t.ns, name)?, &mut obj, manager(q));
            }
            ok(store.update_as(&t.rt, &t.ns, name, obj, part, &requester)?)
        }
        (Method::PATCH, Some(name)) => {
            let ctype = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let may_create = || {
                let attrs = crate::rbac::Attributes::resource(
                    user.clone(),
                    "create",
                    &t.rt.group,
                    &t.rt.plural,
                )
                .in_namespace(&t.ns)
                .named(name);
                state.rbac.check(store, &attrs)
            };
            let apply = Apply {
                manager: manager(q),
                force: q.get("force").is_some_and(|f| f == "true"),
                may_create: &may_create,
                query: q,
            };
            patch(store, &t, name, (ctype, &body), part, &requester, &apply)
        }
        (Method::DELETE, Some(name)) => {
            let opts: Value = if body.is_empty() {
                json!({})
            } else {
                json_body(&body)?
            };
            let policy = q
                .get("propagationPolicy")
                .cloned()
                .or_else(|| opts["propagationPolicy"].as_str().map(str::to_owned));
            let propagation = match policy.as_deref() {
                Some("Foreground") => Propagation::Foreground,
                Some("Orphan") => Propagation::Orphan,
                _ => Propagation::Background,
            };
            ok(store.delete(&t.rt, &t.ns, name, propagation)?)
        }
        (Method::DELETE, None) => {
            let items = list_items(state, &t, q)?;
            for item in &items {
                let ns = item["metadata"]["namespace"].as_str().unwrap_or_default();
                let name = item["metadata"]["name"].as_str().unwrap_or_default();
                store.delete(&t.rt, ns, name, Propagation::Background)?;
            }
            ok(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}))
        }
        (m, _) => Err(ApiError::MethodNotAllowed(format!(
            "{m} is not supported on this path"
        ))),
    }
}

/// `POST pods/<name>/binding`: what a scheduler does to place a pod.
fn bind_pod(store: &Store, t: &Target, body: &Bytes) -> Result<Response> {
    let name = t.name.as_deref().unwrap_or_default();
    let binding = json_body(body)?;
    let node = binding["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::Invalid {
            kind: "Binding".into(),
            name: name.to_owned(),
            field: "target.name".into(),
            reason: "Required value".into(),
        })?;
    let mut pod = store.get(&t.rt, &t.ns, name)?;
    // The binding writes into `spec`: refuse a stored pod whose envelope is broken.
    crate::input::check_object(&pod).map_err(|m| m.invalid("Pod", name))?;
    if pod["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty())
    {
        return Err(ApiError::Conflict {
            resource: "pods/binding".into(),
            name: name.to_owned(),
        });
    }
    pod["spec"]["nodeName"] = json!(node);
    store.update(&t.rt, &t.ns, name, pod, Part::Main)?;
    Ok((StatusCode::CREATED, axum::Json(json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))).into_response())
}

/// Whether a request's (decoded) query asks for a watch: what the handler serves and what
/// authorization checks must agree.
pub(crate) fn wants_watch(q: &HashMap<String, String>) -> bool {
    q.get("watch").is_some_and(|w| w == "true" || w == "1")
}

/// The `fieldManager` of a write (`unknown` when the client names none).
fn manager(q: &HashMap<String, String>) -> &str {
    q.get("fieldManager").map_or("unknown", String::as_str)
}

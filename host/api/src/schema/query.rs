//! The query root: the caller, templates, sessions (paged), the node inventory.

use async_graphql::{Context, ID, InputObject, Object, SimpleObject};
use kube::api::ListParams;
use kube::{Api, ResourceExt as _};
use vdi_crd::{VDIPlugin, VDISession, VDITemplate};

use super::ctx;
use super::inventory::{NodeInventory, node_inventory};
use super::page::{Page, page};
use super::quota::{QuotaView, quota_view};
use super::types::{Phase, Session, Template};
use crate::config::DEFAULT_PAGE_SIZE;
use crate::error::{ApiError, Result};
use crate::ids;

/// The admission plugin whose settings `me.quota` reports.
pub const QUOTA_PLUGIN: &str = "quota";

/// The signed-in user.
#[derive(SimpleObject)]
pub struct Me {
    /// User name, as the cluster knows it (`oidc:alice`).
    pub user: String,
    /// Groups, as the cluster knows them (`oidc:staff`).
    pub groups: Vec<String>,
    /// The user's namespace, where their sessions live.
    pub namespace: String,
    /// What the quota plugin allows them and what they use.
    pub quota: QuotaView,
}

/// Which sessions to list.
#[derive(InputObject, Default)]
pub struct SessionFilter {
    /// Only these phases.
    pub phases: Option<Vec<Phase>>,
    /// Only this template.
    pub template: Option<String>,
    /// Only this owner (with `allUsers`).
    pub user: Option<String>,
}

/// A page of sessions (Relay connection).
#[derive(SimpleObject)]
pub struct SessionConnection {
    /// The sessions and their cursors.
    pub edges: Vec<SessionEdge>,
    /// Where the page ends.
    pub page_info: PageInfo,
    /// How many sessions match in all.
    pub total_count: usize,
}

/// One session and its cursor.
#[derive(SimpleObject)]
pub struct SessionEdge {
    /// Pass as `after` to continue after this session.
    pub cursor: String,
    /// The session.
    pub node: Session,
}

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether more sessions follow.
    pub has_next_page: bool,
    /// The last edge's cursor.
    pub end_cursor: Option<String>,
}

/// A loaded plugin, as admins see it.
#[derive(SimpleObject)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// Its hook.
    pub hook: String,
    /// Its module's digest.
    pub sha256: String,
    /// `Ready` or `Error` (empty until the operator reports).
    pub phase: Option<String>,
    /// What went wrong, if it did.
    pub message: Option<String>,
    /// Its place in the admission chain (lower first; for other hooks the lowest is the
    /// default).
    pub order: i32,
    /// What its failure means: `Fail` (refuse) or `Ignore` (skip it).
    pub failure_policy: String,
    /// Its whole spec as stored (source, settings, limits, match), for editing.
    pub spec: async_graphql::Json<serde_json::Value>,
}

impl From<VDIPlugin> for PluginInfo {
    fn from(p: VDIPlugin) -> Self {
        let status = p.status.as_ref();
        Self {
            name: p.name_any(),
            hook: p.spec.hook.as_str().to_owned(),
            sha256: p.spec.sha256.clone(),
            phase: status
                .and_then(|s| serde_json::to_value(s.phase).ok())
                .and_then(|v| v.as_str().map(str::to_owned)),
            message: status.and_then(|s| s.message.clone()),
            order: p.spec.order,
            failure_policy: serde_json::to_value(p.spec.failure_policy)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            spec: async_graphql::Json(serde_json::to_value(&p.spec).unwrap_or_default()),
        }
    }
}

/// Queries.
pub struct Query;

#[Object]
impl Query {
    /// The signed-in user, their namespace and quota.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Me> {
        let (caller, client) = ctx::acting(ctx)?;
        let state = ctx::state(ctx)?;
        state.ensure_user(&caller).await?;
        let plugin = Api::<VDIPlugin>::all(state.service.clone())
            .get_opt(QUOTA_PLUGIN)
            .await
            .map_err(ApiError::from)?;
        let sessions = Api::<VDISession>::namespaced(client, &caller.namespace())
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .or_else(|e| match e {
                // No namespace yet (before the first launch): nothing in use.
                kube::Error::Api(s) if s.code == 404 => Ok(Vec::new()),
                other => Err(ApiError::from(other)),
            })?;
        let settings = plugin.as_ref().and_then(|p| p.spec.settings.as_ref());
        let quota = quota_view(plugin.is_some(), settings, &caller.groups, &sessions)?;
        Ok(Me {
            namespace: caller.namespace(),
            user: caller.user,
            groups: caller.groups,
            quota,
        })
    }

    /// The templates the caller may read.
    async fn templates(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Template>> {
        let (_, client) = ctx::acting(ctx)?;
        let list = Api::<VDITemplate>::all(client)
            .list(&ListParams::default())
            .await
            .map_err(ApiError::from)?;
        let mut out: Vec<Template> = list.items.into_iter().map(Template).collect();
        out.sort_by_key(|t| t.0.name_any());
        Ok(out)
    }

    /// The caller's sessions, or with `allUsers` everyone's (admins), `first` at a time after
    /// the cursor `after`, ordered by namespace and name.
    #[graphql(complexity = "page_cost(first, child_complexity)")]
    async fn sessions(
        &self,
        ctx: &Context<'_>,
        filter: Option<SessionFilter>,
        #[graphql(default = false)] all_users: bool,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<SessionConnection> {
        let (caller, client) = ctx::acting(ctx)?;
        let max = ctx::state(ctx)?.config.max_page_size;
        let first = page_size(first, max)?;
        let after = after.map(|a| ids::parse_cursor(&a, "after")).transpose()?;
        let api: Api<VDISession> = if all_users {
            Api::all(client)
        } else {
            ctx::state(ctx)?.ensure_user(&caller).await?;
            Api::namespaced(client, &caller.namespace())
        };
        let items = match api.list(&ListParams::default()).await {
            Ok(l) => l.items,
            Err(kube::Error::Api(s)) if s.code == 404 && !all_users => Vec::new(),
            Err(e) => return Err(ApiError::from(e).into()),
        };
        let filter = filter.unwrap_or_default();
        let mut keyed: Vec<(String, Session)> = items
            .into_iter()
            .map(Session)
            .filter(|s| matches(&filter, s))
            .map(|s| (sort_key(&s.0), s))
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let total_count = keyed.len();
        let Page { items, has_next } = page(keyed, after.as_deref(), first);
        let edges: Vec<SessionEdge> = items
            .into_iter()
            .map(|(key, node)| SessionEdge {
                cursor: ids::cursor(&key),
                node,
            })
            .collect();
        Ok(SessionConnection {
            page_info: PageInfo {
                has_next_page: has_next,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
            total_count,
        })
    }

    /// One session by its global ID.
    async fn session(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Session> {
        let (_, client) = ctx::acting(ctx)?;
        let (ns, name) = ids::parse_session_id(&id, "id")?;
        let s = Api::<VDISession>::namespaced(client, &ns)
            .get(&name)
            .await
            .map_err(ApiError::from)?;
        Ok(Session(s))
    }

    /// The GPU inventory per node (admins).
    async fn nodes(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<NodeInventory>> {
        let (_, client) = ctx::acting(ctx)?;
        Ok(node_inventory(&client).await?)
    }

    /// The plugins and their state (admins).
    async fn plugins(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<PluginInfo>> {
        let (_, client) = ctx::acting(ctx)?;
        let list = Api::<VDIPlugin>::all(client)
            .list(&ListParams::default())
            .await
            .map_err(ApiError::from)?;
        let mut out: Vec<PluginInfo> = list.items.into_iter().map(PluginInfo::from).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// What a page costs against the complexity limit: its fields once per session asked for.
fn page_cost(first: Option<i32>, child_complexity: usize) -> usize {
    let n = first.map_or(DEFAULT_PAGE_SIZE, |f| usize::try_from(f).unwrap_or(0));
    n.max(1).saturating_mul(child_complexity).saturating_add(1)
}

/// The page size asked for, within `1..=max`.
pub(crate) fn page_size(first: Option<i32>, max: usize) -> Result<usize> {
    match first {
        None => Ok(DEFAULT_PAGE_SIZE.min(max)),
        Some(n) if n < 1 => Err(ApiError::bad_input("first", "must be at least 1")),
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > max {
                Err(ApiError::bad_input(
                    "first",
                    format!("at most {max} per page"),
                ))
            } else {
                Ok(n)
            }
        }
    }
}

fn sort_key(s: &VDISession) -> String {
    format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any())
}

fn matches(filter: &SessionFilter, s: &Session) -> bool {
    filter
        .phases
        .as_ref()
        .is_none_or(|ps| ps.contains(&s.phase_value()))
        && filter
            .template
            .as_ref()
            .is_none_or(|t| *t == s.0.spec.template)
        && filter
            .user
            .as_ref()
            .is_none_or(|u| *u == s.0.spec.user.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_shows_its_order_failure_policy_and_spec() {
        let spec: vdi_crd::VDIPluginSpec = serde_json::from_value(serde_json::json!({
            "hook": "admission",
            "source": {"upload": {}},
            "sha256": format!("sha256:{}", "a".repeat(64)),
            "order": 7,
            "failurePolicy": "Ignore",
            "settings": {"maxSessionsPerUser": 2},
        }))
        .unwrap();
        let info = PluginInfo::from(VDIPlugin::new("q", spec));
        assert_eq!(info.name, "q");
        assert_eq!(info.hook, "admission");
        assert_eq!(info.order, 7);
        assert_eq!(info.failure_policy, "Ignore");
        assert_eq!(info.phase, None);
        assert_eq!(info.spec.0["settings"]["maxSessionsPerUser"], 2);
        assert_eq!(info.spec.0["source"], serde_json::json!({"upload": {}}));
    }

    #[test]
    fn a_page_costs_its_fields_per_session() {
        assert_eq!(page_cost(Some(10), 5), 51);
        assert_eq!(page_cost(None, 5), DEFAULT_PAGE_SIZE * 5 + 1);
        assert_eq!(page_cost(Some(-3), 5), 6);
    }

    #[test]
    fn page_sizes_are_capped_and_name_the_argument() {
        assert_eq!(page_size(None, 100).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(None, 5).unwrap(), 5);
        assert_eq!(page_size(Some(100), 100).unwrap(), 100);
        for bad in [0, -1, 101] {
            let e = page_size(Some(bad), 100).unwrap_err();
            assert!(
                matches!(&e, ApiError::BadInput { field, .. } if field == "first"),
                "{bad}: {e:?}"
            );
        }
    }
}

// The dashboard client's HTTPS loopback rule. `vdi up` serves the dashboard over HTTPS on a
// loopback origin (`https://localhost:8443` by default, any port): the dev IdP lets the
// `vdi-dashboard` client redirect to `<origin>/callback` (and back to `<origin>/` after
// logout) and call the token endpoint from that origin. Dev only, loopback only.

export const DASHBOARD_CLIENT = 'vdi-dashboard';
// Hosts the dashboard may be served from in development: loopback only.
const DASHBOARD_HOSTS = new Set(['localhost', '127.0.0.1']);

// The origin of `uri` when it is an HTTPS loopback origin (any port) followed by exactly
// `path`, with no user info, query or fragment; else undefined. The dashboard's redirect URI
// is `<origin>/callback`, its post-logout redirect URI `<origin>/`.
export function dashboardLoopback(uri, path) {
  const url = URL.parse(String(uri));
  if (!url || url.protocol !== 'https:' || !DASHBOARD_HOSTS.has(url.hostname)) return undefined;
  if (url.username || url.password || url.search || url.hash || url.pathname !== path) return undefined;
  // URL.parse normalises; refuse anything that was not already in normal form.
  if (url.href !== String(uri)) return undefined;
  return url.origin;
}

// oidc-provider refuses `https://localhost` redirect URIs for native clients (RFC 8252 keeps
// HTTPS for claimed URIs), and the dashboard client must stay native for its loopback `http`
// redirect; so its redirect checks accept the HTTPS loopback rule as well.
export function allowDashboardLoopback(provider) {
  const proto = provider.Client.prototype;
  const redirectUriAllowed = proto.redirectUriAllowed;
  const postLogoutRedirectUriAllowed = proto.postLogoutRedirectUriAllowed;
  proto.redirectUriAllowed = function allowed(value) {
    return redirectUriAllowed.call(this, value)
      || (this.clientId === DASHBOARD_CLIENT && dashboardLoopback(value, '/callback') !== undefined);
  };
  proto.postLogoutRedirectUriAllowed = function allowed(value) {
    return postLogoutRedirectUriAllowed.call(this, value)
      || (this.clientId === DASHBOARD_CLIENT && dashboardLoopback(value, '/') !== undefined);
  };
}

// CORS for the token and revocation endpoints, which the dashboard calls from its page: a
// public client's registered redirect origins, and for the dashboard the HTTPS loopback ones.
export function clientBasedCORS(_ctx, origin, client) {
  if (client.clientAuthMethod !== 'none' || origin === 'null') return false;
  if (client.clientId === DASHBOARD_CLIENT && dashboardLoopback(`${origin}/`, '/') === origin) return true;
  return client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin);
}


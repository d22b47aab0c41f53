// Sign-in: authorization code + PKCE against the configured issuer (oidc-client-ts). Tokens
// stay in sessionStorage (gone with the tab), never localStorage; the ID token is the API's
// bearer (its audience is this client); refresh through the provider's refresh token.
import { type UserManagerSettings, WebStorageStateStore } from 'oidc-client-ts';

import type { DashboardConfig } from './config';

/** The group whose members see the admin pages, as the cluster names it. */
export const ADMIN_GROUP = 'vdi-admins';

export const CALLBACK_PATH = '/callback';

export function oidcSettings(config: DashboardConfig, origin: string): UserManagerSettings {
  const store = new WebStorageStateStore({ store: window.sessionStorage });
  return {
    authority: config.issuer,
    client_id: config.clientId,
    redirect_uri: `${origin}${CALLBACK_PATH}`,
    post_logout_redirect_uri: `${origin}/`,
    response_type: 'code',
    // offline_access + prompt=consent: the provider issues a refresh token (OIDC Core 11).
    scope: 'openid profile groups offline_access',
    prompt: 'consent',
    userStore: store,
    stateStore: store,
    automaticSilentRenew: true,
    loadUserInfo: false,
  };
}

/** Whether a group list (prefixed by the cluster, `oidc:vdi-admins`, or not) makes an admin. */
export function isAdmin(groups: readonly string[] | null | undefined): boolean {
  return (groups ?? []).some((g) => g === ADMIN_GROUP || g.endsWith(`:${ADMIN_GROUP}`));
}

/** Drops the code and state the provider appended, once the callback is handled. */
export function onSigninCallback(): void {
  const target = sessionStorage.getItem('vdi.returnTo') ?? '/';
  sessionStorage.removeItem('vdi.returnTo');
  window.history.replaceState({}, document.title, target.startsWith('/') ? target : '/');
}

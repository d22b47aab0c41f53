// The signed-in shell: sign-in gate, the API client, navigation and routes.
import { useEffect, useMemo, useRef } from 'react';
import { AuthProvider, useAuth } from 'react-oidc-context';
import { BrowserRouter, NavLink, Navigate, Route, Routes, useLocation } from 'react-router';
import { Provider as UrqlProvider, useQuery } from 'urql';

import { MeQuery } from './api/documents';
import { CALLBACK_PATH, isAdmin, oidcSettings, onSigninCallback } from './auth';
import { createClient } from './client';
import type { DashboardConfig } from './config';
import { ConfigContext, useConfig } from './configContext';
import { ErrorBox, Loading } from './components/ui';
import { Catalogue } from './pages/Catalogue';
import { MySessions } from './pages/MySessions';
import { SessionPage } from './pages/SessionPage';
import { Inventory } from './pages/admin/Inventory';
import { Plugins } from './pages/admin/Plugins';
import { Templates } from './pages/admin/Templates';

export function App({ config }: { config: DashboardConfig }) {
  const settings = useMemo(() => oidcSettings(config, window.location.origin), [config]);
  return (
    <ConfigContext.Provider value={config}>
      <AuthProvider {...settings} onSigninCallback={onSigninCallback}>
        <Gate />
      </AuthProvider>
    </ConfigContext.Provider>
  );
}

function Gate() {
  const auth = useAuth();
  if (auth.isLoading || window.location.pathname === CALLBACK_PATH) {
    return auth.error ? <SignIn error={auth.error.message} /> : <Loading what="your sign-in" />;
  }
  if (!auth.isAuthenticated) return <SignIn error={auth.error?.message} />;
  return <SignedIn />;
}

function SignIn({ error }: { error?: string }) {
  const auth = useAuth();
  return (
    <main className="signin">
      <h1>VDI</h1>
      <p>Your desktops, in the browser.</p>
      {error && (
        <p className="error" role="alert">
          Sign-in failed: {error}
        </p>
      )}
      <button
        type="button"
        className="primary"
        autoFocus
        onClick={() => {
          const here = window.location.pathname + window.location.search;
          sessionStorage.setItem('vdi.returnTo', here === CALLBACK_PATH ? '/' : here);
          void auth.signinRedirect();
        }}
      >
        Sign in
      </button>
    </main>
  );
}

function SignedIn() {
  const config = useConfig();
  const auth = useAuth();
  // The client reads the newest ID token on every request and WebSocket (re)connection.
  const token = useRef<string | undefined>(undefined);
  token.current = auth.user?.id_token;
  const client = useMemo(() => createClient(config, () => token.current), [config]);
  return (
    <UrqlProvider value={client}>
      <BrowserRouter>
        <Shell />
      </BrowserRouter>
    </UrqlProvider>
  );
}

function Shell() {
  const auth = useAuth();
  const [me] = useQuery({ query: MeQuery });
  const profile = auth.user?.profile;
  const groups = me.data?.me.groups ?? (Array.isArray(profile?.groups) ? (profile.groups as string[]) : []);
  const admin = isAdmin(groups);
  const name = profile?.preferred_username ?? profile?.sub ?? '';
  // After a navigation, keyboard and screen-reader users start at the new page's content.
  const { pathname } = useLocation();
  const mainRef = useRef<HTMLElement>(null);
  const firstPath = useRef(pathname);
  useEffect(() => {
    if (pathname !== firstPath.current) mainRef.current?.focus({ preventScroll: true });
  }, [pathname]);
  return (
    <>
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <nav aria-label="Main">
          <strong className="brand">VDI</strong>
          <NavLink to="/" end>
            Desktops
          </NavLink>
          <NavLink to="/my">My sessions</NavLink>
          {admin && (
            <>
              <span className="sep" aria-hidden="true">
                |
              </span>
              <NavLink to="/admin/sessions">All sessions</NavLink>
              <NavLink to="/admin/gpus">GPUs</NavLink>
              <NavLink to="/admin/plugins">Plugins</NavLink>
              <NavLink to="/admin/templates">Templates</NavLink>
            </>
          )}
        </nav>
        <div className="who">
          <span data-testid="user">{name}</span>{' '}
          <button type="button" onClick={() => void auth.signoutRedirect()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1} ref={mainRef}>
        {me.error && <ErrorBox error={me.error} title="The API refused you" />}
        <Routes>
          <Route path="/" element={<Catalogue />} />
          <Route path="/my" element={<MySessions />} />
          <Route path="/session/:id" element={<SessionPage />} />
          <Route path="/admin/sessions" element={admin ? <MySessions allUsers /> : <NotAllowed />} />
          <Route path="/admin/gpus" element={admin ? <Inventory /> : <NotAllowed />} />
          <Route path="/admin/plugins" element={admin ? <Plugins /> : <NotAllowed />} />
          <Route path="/admin/templates" element={admin ? <Templates /> : <NotAllowed />} />
          <Route path="/callback" element={<Navigate to="/" replace />} />
          <Route path="*" element={<NotFound />} />
        </Routes>
      </main>
    </>
  );
}

function NotAllowed() {
  return (
    <section>
      <h1>Administrators only</h1>
      <p>This page is for members of the vdi-admins group.</p>
    </section>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Page not found</h1>
    </section>
  );
}

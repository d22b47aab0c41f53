// What the platform tells the built dashboard at `/config.json`, so the assets carry no
// environment: the OIDC issuer and client, and where the API is.

export interface DashboardConfig {
  /** The OIDC issuer URL. */
  issuer: string;
  /** The public OIDC client (`vdi-dashboard`). */
  clientId: string;
  /** The API's HTTP endpoint, absolute or relative to the page (`/graphql`). */
  graphql: string;
  /** The API's WebSocket endpoint (`/graphql/ws`), absolute (`wss:`) or relative. */
  graphqlWs: string;
}

/** Reads `/config.json`'s JSON, naming the field that is missing or wrong. */
export function parseConfig(value: unknown): DashboardConfig {
  if (typeof value !== 'object' || value === null) throw new Error('config.json: not a JSON object');
  const obj = value as Record<string, unknown>;
  const field = (name: keyof DashboardConfig): string => {
    const v = obj[name];
    if (typeof v !== 'string' || v.trim() === '') throw new Error(`config.json: ${name} must be a non-empty string`);
    return v;
  };
  const issuer = field('issuer');
  if (!/^https?:\/\//.test(issuer)) throw new Error('config.json: issuer must be an http(s) URL');
  return { issuer, clientId: field('clientId'), graphql: field('graphql'), graphqlWs: field('graphqlWs') };
}

/** The WebSocket URL of `path` seen from `location` (`/graphql/ws` → `wss://host/graphql/ws`). */
export function wsUrl(path: string, location: { protocol: string; host: string }): string {
  if (/^wss?:\/\//.test(path)) return path;
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}${path.startsWith('/') ? '' : '/'}${path}`;
}

export async function loadConfig(): Promise<DashboardConfig> {
  const res = await fetch('/config.json', { cache: 'no-store' });
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  return parseConfig(await res.json());
}

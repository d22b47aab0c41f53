import { describe, expect, it } from 'vitest';

import { isAdmin } from './auth';
import { parseConfig, wsUrl } from './config';
import { parseSpec } from './domain/spec';

describe('config.json', () => {
  it('reads what vdi up serves', () => {
    expect(parseConfig({ issuer: 'https://127.0.0.1:5556', clientId: 'vdi-dashboard', graphql: '/graphql', graphqlWs: '/graphql/ws' })).toEqual({
      issuer: 'https://127.0.0.1:5556',
      clientId: 'vdi-dashboard',
      graphql: '/graphql',
      graphqlWs: '/graphql/ws',
    });
  });
  it('names the bad field', () => {
    expect(() => parseConfig({ issuer: 'https://x', graphql: '/graphql', graphqlWs: '/ws' })).toThrow('clientId');
    expect(() => parseConfig({ issuer: 'ftp://x', clientId: 'c', graphql: '/g', graphqlWs: '/w' })).toThrow('issuer');
    expect(() => parseConfig([])).toThrow('issuer');
    expect(() => parseConfig(null)).toThrow('not a JSON object');
  });
  it('makes the WebSocket URL from the page', () => {
    expect(wsUrl('/graphql/ws', { protocol: 'https:', host: 'localhost:8443' })).toBe('wss://localhost:8443/graphql/ws');
    expect(wsUrl('/graphql/ws', { protocol: 'http:', host: '127.0.0.1:5173' })).toBe('ws://127.0.0.1:5173/graphql/ws');
    expect(wsUrl('wss://api.example/ws', { protocol: 'https:', host: 'x' })).toBe('wss://api.example/ws');
  });
});

describe('admin and specs', () => {
  it('knows the admins by group, prefixed or not', () => {
    expect(isAdmin(['oidc:vdi-admins'])).toBe(true);
    expect(isAdmin(['vdi-admins'])).toBe(true);
    expect(isAdmin(['oidc:staff', 'oidc:vdi-admins-not'])).toBe(false);
    expect(isAdmin(undefined)).toBe(false);
  });
  it('takes a JSON object as a spec and says why anything else is not one', () => {
    expect(parseSpec('{"a":1}')).toEqual({ ok: true, value: { a: 1 } });
    expect(parseSpec('[1]')).toEqual({ ok: false, error: 'spec: must be a JSON object' });
    const bad = parseSpec('{');
    expect(bad.ok).toBe(false);
  });
});

// The urql client: queries and mutations over HTTP, subscriptions over graphql-ws with the
// token in connection_init (browsers cannot set headers on a WebSocket).
import { createClient as createWsClient } from 'graphql-ws';
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from 'urql';

import { type DashboardConfig, wsUrl } from './config';

export function createClient(config: DashboardConfig, token: () => string | undefined): Client {
  const ws = createWsClient({
    url: wsUrl(config.graphqlWs, window.location),
    connectionParams: () => ({ token: token() ?? '' }),
    lazy: true,
    retryAttempts: 20,
    shouldRetry: () => true,
  });
  return new Client({
    url: config.graphql,
    // The API answers GET with GraphiQL: every operation is a POST.
    preferGetMethod: false,
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
    fetchOptions: (): RequestInit => {
      const t = token();
      const headers: Record<string, string> = t ? { authorization: `Bearer ${t}` } : {};
      return { headers };
    },
  });
}

/** Uploads a module (GraphQL multipart request spec): its digest, size and whether it is new. */
export async function uploadModule(
  config: DashboardConfig,
  token: string,
  file: File,
): Promise<{ sha256: string; size: number; new: boolean }> {
  const form = new FormData();
  form.append(
    'operations',
    JSON.stringify({
      query: 'mutation UploadModule($file: Upload!) { uploadModule(file: $file) { sha256 size new } }',
      variables: { file: null },
    }),
  );
  form.append('map', JSON.stringify({ '0': ['variables.file'] }));
  form.append('0', file, file.name);
  const res = await fetch(config.graphql, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}` },
    body: form,
  });
  const body = (await res.json().catch(() => null)) as {
    data?: { uploadModule?: { sha256: string; size: number; new: boolean } };
    errors?: { message: string }[];
  } | null;
  const uploaded = body?.data?.uploadModule;
  if (uploaded) return uploaded;
  throw new Error(body?.errors?.map((e) => e.message).join('; ') || `upload failed: HTTP ${res.status}`);
}

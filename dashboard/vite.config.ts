import react from '@vitejs/plugin-react';
import { defineConfig } from 'vitest/config';

// Built assets go to dist/, which `vdi up` serves at `/` (with index.html for every other
// path the platform does not route). Dev server: `npm run dev` proxies the API to a running
// `vdi up` (VDI_URL, default https://localhost:8443).
const target = process.env.VDI_URL ?? 'https://localhost:8443';

export default defineConfig({
  plugins: [react()],
  build: { outDir: 'dist', sourcemap: false, chunkSizeWarningLimit: 600 },
  server: {
    proxy: {
      '/graphql': { target, secure: false, ws: true },
      '/config.json': { target, secure: false },
      '/sessions/': { target, secure: false, ws: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['src/**/*.test.{ts,tsx}'],
    setupFiles: ['src/test-setup.ts'],
  },
});

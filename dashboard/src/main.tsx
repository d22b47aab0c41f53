import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';

import { App } from './App';
import { loadConfig } from './config';
import './styles.css';

const root = createRoot(document.getElementById('root') as HTMLElement);
loadConfig().then(
  (config) =>
    root.render(
      <StrictMode>
        <App config={config} />
      </StrictMode>,
    ),
  (err: unknown) =>
    root.render(
      <main className="signin">
        <h1>VDI</h1>
        <p className="error" role="alert">
          The dashboard cannot start: {err instanceof Error ? err.message : String(err)}
        </p>
      </main>
    ),
);

import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MemoryRouter } from 'react-router';
import { describe, expect, it, vi } from 'vitest';

import { session } from '../test-fixtures';
import { SessionTable } from './SessionTable';

const row = session;

describe('SessionTable', () => {
  it('enables Connect only when Running and asks before terminating', async () => {
    const onConnect = vi.fn();
    const onTerminate = vi.fn();
    render(
      <MemoryRouter>
        <SessionTable
          sessions={[row('pending'), row('running', { phase: 'RUNNING', node: 'node-1', gpu: 0, gpuSlices: 1 })]}
          actions={{ onConnect, onTerminate }}
        />
      </MemoryRouter>,
    );
    const [, pending, running] = screen.getAllByRole('row');
    expect((within(pending!).getByRole('button', { name: 'Connect' }) as HTMLButtonElement).disabled).toBe(true);
    expect(within(running!).getByText('node-1 · GPU 0 · 1 slice')).toBeTruthy();
    await userEvent.click(within(running!).getByRole('button', { name: 'Connect' }));
    expect(onConnect).toHaveBeenCalledWith(expect.objectContaining({ name: 'running' }));

    await userEvent.click(within(running!).getByRole('button', { name: 'Terminate' }));
    expect(onTerminate).not.toHaveBeenCalled();
    expect(within(running!).getByText('Terminate running?')).toBeTruthy();
    await userEvent.click(within(running!).getByRole('button', { name: 'Yes, terminate' }));
    expect(onTerminate).toHaveBeenCalledWith(expect.objectContaining({ name: 'running' }));
  });

  it("shows a denied session's reason", () => {
    render(
      <MemoryRouter>
        <SessionTable sessions={[row('d', { phase: 'DENIED', message: 'contractors may use ubuntu-cpu only' })]} actions={{ onTerminate: vi.fn() }} />
      </MemoryRouter>,
    );
    expect(screen.getByText('contractors may use ubuntu-cpu only')).toBeTruthy();
    expect(screen.getByText('Denied')).toBeTruthy();
  });
});

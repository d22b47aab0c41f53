import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';

import type { QuotaView } from '../domain/quota';
import { LaunchForm, type TemplateItem } from './LaunchForm';
import { QuotaDisplay } from './QuotaDisplay';

const template: TemplateItem = {
  name: 'ubuntu-desktop',
  displayName: 'Ubuntu 24.04 desktop',
  description: 'XFCE',
  image: 'img',
  resources: { gpuSlices: 1, cpuMillis: 2000, memoryMib: 4096, gpuMemoryMib: null, videoEncoder: null },
};

const quota: QuotaView = {
  enforced: true,
  maxSessions: 3,
  maxGpuSlices: 2,
  maxTimeoutSeconds: 8 * 3600,
  defaultTimeoutSeconds: 3600,
  allowedTemplates: null,
  activeSessions: 2,
  gpuSlicesInUse: 1,
};

describe('QuotaDisplay', () => {
  it('shows usage against the limits before launch', () => {
    render(<QuotaDisplay quota={quota} />);
    expect(screen.getByTestId('quota-summary').textContent).toBe('1/2 GPU slices, 2/3 sessions');
    expect(screen.getByRole('meter', { name: 'GPU slices used' }).getAttribute('value')).toBe('1');
    expect(screen.getByRole('meter', { name: 'Sessions used' }).getAttribute('max')).toBe('3');
  });
  it('has no meters without a quota', () => {
    render(<QuotaDisplay quota={{ ...quota, enforced: false }} />);
    expect(screen.queryAllByRole('meter')).toHaveLength(0);
  });
});

describe('LaunchForm', () => {
  it("launches with the template's slices and the policy's default timeout", async () => {
    const onLaunch = vi.fn().mockResolvedValue(undefined);
    render(<LaunchForm template={template} quota={quota} onLaunch={onLaunch} />);
    expect((screen.getByLabelText('GPU slices') as HTMLInputElement).value).toBe('1');
    expect((screen.getByLabelText('Timeout') as HTMLInputElement).value).toBe('1h');
    await userEvent.click(screen.getByRole('button', { name: 'Launch' }));
    expect(onLaunch).toHaveBeenCalledWith({ template: 'ubuntu-desktop', gpuSlices: 1, timeoutSeconds: 3600 });
  });

  it('refuses more slices than are left and a timeout above the limit, naming each', async () => {
    const onLaunch = vi.fn();
    render(<LaunchForm template={template} quota={quota} onLaunch={onLaunch} />);
    const slices = screen.getByLabelText('GPU slices');
    await userEvent.clear(slices);
    await userEvent.type(slices, '2');
    expect(slices.getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByText('2 GPU slices asked, 1 left of 2')).toBeTruthy();
    const timeout = screen.getByLabelText('Timeout');
    await userEvent.clear(timeout);
    await userEvent.type(timeout, '9h');
    expect(screen.getByText('at most 8h (longer is clamped by policy)')).toBeTruthy();
    const launch = screen.getByRole('button', { name: 'Launch' }) as HTMLButtonElement;
    expect(launch.disabled).toBe(true);
    await userEvent.click(launch);
    expect(onLaunch).not.toHaveBeenCalled();
  });

  it("shows the policy's reason when the launch is refused", async () => {
    const onLaunch = vi.fn().mockRejectedValue(new Error('contractors may not start ubuntu-desktop'));
    render(<LaunchForm template={template} quota={{ ...quota, allowedTemplates: ['ubuntu-cpu'] }} onLaunch={onLaunch} />);
    // The template check is advice only: the admission plugin has the last word.
    expect(screen.getByText('your groups may not start ubuntu-desktop')).toBeTruthy();
    await userEvent.click(screen.getByRole('button', { name: 'Launch' }));
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('contractors may not start ubuntu-desktop'));
  });

  it('an empty timeout asks for the default', async () => {
    const onLaunch = vi.fn().mockResolvedValue(undefined);
    render(<LaunchForm template={template} quota={{ ...quota, defaultTimeoutSeconds: null }} onLaunch={onLaunch} />);
    await userEvent.click(screen.getByRole('button', { name: 'Launch' }));
    expect(onLaunch).toHaveBeenCalledWith({ template: 'ubuntu-desktop', gpuSlices: 1, timeoutSeconds: null });
  });
});

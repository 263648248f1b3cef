import { execFileSync } from 'node:child_process';
import { access, mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Lays out a devfleet instance's folder like the host the example runbooks are written for, so
 * they have something real to act on: systemd units (web hosts: web and nginx; db hosts:
 * postgres), a container `api` on web hosts, an application log, an installed package with a newer
 * version available, temporary files and a rotated log old enough to clean up, a TLS certificate,
 * and an nginx cache on web hosts. The files are the state devfleet's shims read (README: "What
 * the instances have"). A host that has been seeded once is left alone, so a restart keeps what
 * runs changed.
 */
export async function seedHost(
  root: string,
  instance: { readonly name?: string | undefined; readonly tags: Readonly<Record<string, string>> },
  options: { readonly now?: number; readonly certificateDays?: number } = {},
): Promise<void> {
  const marker = path.join(root, '.devfleet-seeded');
  if (await exists(marker)) return;
  const now = options.now ?? Date.now();
  // What people call the host: its Name tag (host names are EC2's ip-… names).
  const name = instance.tags['Name'] ?? instance.name ?? path.basename(path.dirname(root));
  const web = instance.tags['Role'] === 'web';
  const put = async (file: string, content: string, ageDays = 0) => {
    const full = path.join(root, file);
    await mkdir(path.dirname(full), { recursive: true });
    await writeFile(full, content);
    if (ageDays > 0) {
      const when = new Date(now - ageDays * 86_400_000);
      await utimes(full, when, when);
    }
  };

  for (const unit of web ? ['web', 'nginx'] : instance.tags['Role'] === 'db' ? ['postgres'] : []) {
    await put(`etc/systemd/system/${unit}.service`, `[Service]\nExecStart=/usr/bin/${unit}\n`);
    await put(`run/systemd/units/${unit}`, 'active\n');
  }
  const stamp = (i: number) => new Date(now - (120 - i) * 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
  const log = Array.from({ length: 120 }, (_, i) => `${stamp(i)} ${name} request ${i}`);
  await put('var/log/app/app.log', `${log.join('\n')}\n`);
  await put('var/log/app/app.log.20260101T000000-seed.gz', 'an old rotated log\n', 60);
  await put('var/lib/dpkg/installed/openssl', '3.0.11-1\n');
  await put('var/lib/apt/available/openssl', '3.0.13-1\n');
  await put('var/tmp/upload-old.tmp', 'x'.repeat(4096), 30);
  await put('var/tmp/session-new.tmp', 'fresh');
  const certificate = selfSignedCertificate(`${name}.internal`, options.certificateDays ?? 300);
  if (certificate !== undefined) await put('etc/ssl/services/site.pem', certificate);
  if (web) {
    const api = 'var/lib/docker/containers/api';
    await put(`${api}/image`, 'registry.internal/api:1.8.0\n');
    await put(`${api}/state`, 'running\n');
    await put(`${api}/health`, 'healthy\n');
    await put(`${api}/log`, 'listening on :8080\n');
    await put('var/cache/nginx/a/1f/cached-page', 'cached response');
    await put('var/cache/nginx/b/2e/cached-image', 'cached image');
  }
  await put('.devfleet-seeded', `${new Date(now).toISOString()}\n`);
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

/** A throwaway self-signed certificate from this machine's openssl; none where openssl is missing. */
function selfSignedCertificate(commonName: string, days: number): string | undefined {
  try {
    return execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        '/dev/null',
      ].concat(['-days', String(days), '-subj', `/CN=${commonName}`]),
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 30_000 },
    );
  } catch {
    return undefined;
  }
}

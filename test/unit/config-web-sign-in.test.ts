import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';

/** The browser sign-in settings are checked together, and a public URL that would carry session cookies in clear is refused. */
describe('web sign-in settings', () => {
  const oidc = { MECHANIC_OIDC_ISSUER: 'https://idp.example.com', MECHANIC_OIDC_AUDIENCE: 'mechanic-cli' };

  test('a web client with its issuer gives the web settings, with the session key under MECHANIC_HOME', () => {
    const config = loadConfig({
      ...oidc,
      MECHANIC_HOME: '/srv/mechanic',
      MECHANIC_OIDC_WEB_CLIENT_ID: 'mechanic-web',
      MECHANIC_PUBLIC_URL: 'https://mechanic.example.com/',
    });
    expect(config.authz.web).toEqual({
      clientId: 'mechanic-web',
      clientSecret: undefined,
      publicUrl: 'https://mechanic.example.com',
      sessionKeyFile: '/srv/mechanic/web-session.key',
      sessionTtlSeconds: 3600,
    });
    expect(config.idp).toEqual({ port: 0, dir: '/srv/mechanic/idp' });
    expect(loadConfig(oidc).authz.web).toBeUndefined();
  });

  test('a web client without an issuer is refused', () => {
    expect(() => loadConfig({ MECHANIC_OIDC_WEB_CLIENT_ID: 'mechanic-web' })).toThrow(
      'MECHANIC_OIDC_WEB_CLIENT_ID is set without MECHANIC_OIDC_ISSUER; set the issuer the web client belongs to',
    );
  });

  test.each(['http://mechanic.example.com', 'ftp://127.0.0.1', 'not a url'])(
    'MECHANIC_PUBLIC_URL=%s is refused',
    (url) => {
      expect(() => loadConfig({ MECHANIC_PUBLIC_URL: url })).toThrow(
        'MECHANIC_PUBLIC_URL must be an https:// URL (plain http only on a loopback address), since session cookies travel over it',
      );
    },
  );

  test('plain http is accepted on a loopback address (the embedded stack)', () => {
    expect(() => loadConfig({ MECHANIC_PUBLIC_URL: 'http://127.0.0.1:8787' })).not.toThrow();
  });
});

import { describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';

describe('identity and policy settings', () => {
  test('OIDC is off unless an issuer is set', () => {
    expect(loadConfig({}).authz).toEqual({ policyFile: undefined, oidc: undefined });
  });

  test('an issuer with an audience turns it on, with safe defaults', () => {
    const { oidc } = loadConfig({
      MECHANIC_OIDC_ISSUER: 'https://idp.example',
      MECHANIC_OIDC_AUDIENCE: 'mechanic',
    }).authz;
    expect(oidc).toEqual({
      issuer: 'https://idp.example',
      audience: 'mechanic',
      jwksUrl: undefined,
      userClaim: 'sub',
      groupsClaim: 'groups',
      algorithms: ['RS256', 'ES256', 'EdDSA'],
      clockSkewSeconds: 30,
    });
  });

  test('an issuer without an audience is refused with what to set', () => {
    expect(() => loadConfig({ MECHANIC_OIDC_ISSUER: 'https://idp.example' })).toThrow(
      'MECHANIC_OIDC_ISSUER is set without MECHANIC_OIDC_AUDIENCE; set the audience your tokens carry',
    );
  });

  test.each(['HS256', 'none', 'RS256,HS512'])('the algorithm list %s is refused', (algorithms) => {
    expect(() =>
      loadConfig({
        MECHANIC_OIDC_ISSUER: 'https://i',
        MECHANIC_OIDC_AUDIENCE: 'a',
        MECHANIC_OIDC_ALGORITHMS: algorithms,
      }),
    ).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('MECHANIC_OIDC_ALGORITHMS') }),
    );
  });
});

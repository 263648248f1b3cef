import { describe, expect, test } from 'vitest';
import { keyValues } from '../../cli/args.ts';

describe('--param name=value', () => {
  test('one value per name is a plain value; "=" may appear in the value', () => {
    expect(keyValues(['service=nginx', 'query=a=b'], '--param')).toEqual({ service: 'nginx', query: 'a=b' });
  });

  test('a name given again collects the items of a list, in order, and never splits a value', () => {
    expect(keyValues(['hosts=a', 'mode=x', 'hosts=b,c', 'hosts=d e'], '--param')).toEqual({
      hosts: ['a', 'b,c', 'd e'],
      mode: 'x',
    });
  });

  test('an empty value is still a value, and a pair without a name is refused', () => {
    expect(keyValues(['note='], '--param')).toEqual({ note: '' });
    expect(() => keyValues(['=x'], '--param')).toThrow('--param takes name=value; got "=x"');
    expect(() => keyValues(['x'], '--param')).toThrow('--param takes name=value; got "x"');
  });
});

import { readFile } from 'node:fs/promises';
import { loadConfig } from '../../src/config.ts';
import { UserError } from '../../src/core/errors.ts';
import {
  DEFAULT_POLICY_FILE,
  SCHEMA_FILE,
  createCedarAuthorizer,
  readPolicyText,
  validatePolicies,
} from '../../src/authz/cedar-authorizer.ts';
import { readPolicyCases, runPolicyCases } from '../../src/authz/policy-cases.ts';
import { parse } from '../args.ts';
import { out } from '../output.ts';

const USAGE =
  'mechanic policy validate [policies.cedar] [--json] | mechanic policy test <cases.yaml> [--policies policies.cedar] [--json]';

/**
 * `mechanic policy validate` checks a policy file against mechanic's schema; `mechanic policy test`
 * runs a table of cases against it. Both work offline: policies are checked before a server uses them.
 */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { policies: { type: 'string' }, json: { type: 'boolean' } }, USAGE);
  const [sub, arg, ...extra] = positionals;
  if (extra.length > 0) throw new UserError('USAGE', `too many arguments; usage: ${USAGE}`);
  const defaultFile = loadConfig().authz.policyFile ?? DEFAULT_POLICY_FILE;
  const schema = await readFile(SCHEMA_FILE, 'utf8');

  if (sub === 'validate') {
    if (values.policies !== undefined)
      throw new UserError('USAGE', `validate takes the policy file as its argument; usage: ${USAGE}`);
    const file = arg ?? defaultFile;
    const problems = validatePolicies(await readPolicyText(file), file, schema);
    if (values.json) out.json({ file, valid: problems.length === 0, problems });
    else if (problems.length === 0) out.line(`${file}: valid against mechanic's schema`);
    else for (const p of problems) out.line(p);
    return problems.length === 0 ? 0 : 1;
  }

  if (sub === 'test') {
    if (arg === undefined) throw new UserError('USAGE', `name the case file; usage: ${USAGE}`);
    const file = values.policies ?? defaultFile;
    const authorizer = createCedarAuthorizer({ policies: await readPolicyText(file), source: file, schema });
    const results = runPolicyCases(authorizer, await readPolicyCases(arg));
    const failed = results.filter((r) => !r.passed);
    if (values.json) out.json({ policies: file, cases: results });
    else {
      for (const r of failed) out.line(`FAIL  ${r.name}: ${r.problem}`);
      out.line(`${results.length - failed.length} of ${results.length} cases pass against ${file}`);
    }
    return failed.length === 0 ? 0 : 1;
  }

  throw new UserError('USAGE', `usage: ${USAGE}`);
}

// The AWS CLI subset devfleet instances have (see ./aws): the real SSM client, signed with the
// instance's credentials, against devfleet's endpoint. Messages and exit codes follow the AWS CLI v2:
// 252 for a command line it cannot parse, 253 for missing credentials, 254 for an error AWS returned.
import { GetParameterCommand, PutParameterCommand, SSMClient, type ParameterType } from '@aws-sdk/client-ssm';

const USAGE =
  'devfleet\'s aws knows "aws ssm get-parameter --name NAME [--with-decryption] [--query Parameter.Value] [--output text|json]" ' +
  'and "aws ssm put-parameter --name NAME --value VALUE [--type String|SecureString] [--overwrite]"';

function fail(code: number, message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

function parse(argv: string[]) {
  const [service, operation, ...rest] = argv;
  const opts = { flags: new Set<string>(), values: new Map<string, string>() };
  const valued = new Set(['--name', '--value', '--type', '--query', '--output', '--region', '--description']);
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] ?? '';
    const eq = arg.indexOf('=');
    const key = eq > 0 ? arg.slice(0, eq) : arg;
    if (valued.has(key)) {
      const value = eq > 0 ? arg.slice(eq + 1) : rest[++i];
      if (value === undefined) fail(252, `aws: error: argument ${key}: expected one argument`);
      opts.values.set(key, value);
    } else if (['--with-decryption', '--no-with-decryption', '--overwrite', '--no-overwrite'].includes(arg)) {
      opts.flags.add(arg);
    } else {
      fail(252, `aws: error: unknown option ${arg}\n${USAGE}`);
    }
  }
  return { service, operation, opts };
}

/** The one JMESPath form scripts use: a dotted path such as Parameter.Value. */
function query(data: unknown, path: string | undefined): unknown {
  if (path === undefined) return data;
  if (!/^[A-Za-z]+(\.[A-Za-z]+)*$/.test(path))
    fail(252, `aws: error: devfleet's aws supports --query as a dotted path only, not ${path}`);
  return path
    .split('.')
    .reduce<unknown>(
      (v, key) => (v !== null && typeof v === 'object' ? ((v as Record<string, unknown>)[key] ?? null) : null),
      data,
    );
}

/** A scalar as the CLI's text output shows it; a nested object or array is left out. */
function text(value: unknown): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return '';
}

function print(value: unknown, output: string): void {
  if (output !== 'text') process.stdout.write(`${JSON.stringify(value, null, 4)}\n`);
  else if (value !== null && typeof value === 'object') {
    process.stdout.write(
      `${Object.values(value as Record<string, unknown>)
        .map(text)
        .join('\t')}\n`,
    );
  } else process.stdout.write(`${text(value)}\n`);
}

const { service, operation, opts } = parse(process.argv.slice(2));
if (service !== 'ssm' || !['get-parameter', 'put-parameter'].includes(operation ?? '')) fail(252, USAGE);
const name = opts.values.get('--name') ?? fail(252, 'aws: error: the following arguments are required: --name');
const env = process.env;
const accessKeyId = env['AWS_ACCESS_KEY_ID'];
const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
const sessionToken = env['AWS_SESSION_TOKEN'];
if (!accessKeyId || !secretAccessKey) {
  // What the AWS CLI says on an instance without an instance profile.
  fail(253, '\nUnable to locate credentials. You can configure credentials by running "aws configure".');
}
const region = opts.values.get('--region') ?? env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'];
const endpoint = env['AWS_ENDPOINT_URL_SSM'] ?? env['AWS_ENDPOINT_URL'];
const client = new SSMClient({
  ...(region !== undefined ? { region } : {}),
  ...(endpoint !== undefined ? { endpoint } : {}),
  credentials: { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) },
  maxAttempts: 3,
});
const opName = operation === 'get-parameter' ? 'GetParameter' : 'PutParameter';
try {
  const answer =
    operation === 'get-parameter'
      ? await client.send(new GetParameterCommand({ Name: name, WithDecryption: opts.flags.has('--with-decryption') }))
      : await client.send(
          new PutParameterCommand({
            Name: name,
            Value: opts.values.get('--value') ?? fail(252, 'aws: error: the following arguments are required: --value'),
            Type: (opts.values.get('--type') ?? 'String') as ParameterType,
            Overwrite: opts.flags.has('--overwrite'),
            ...(opts.values.has('--description') ? { Description: opts.values.get('--description') } : {}),
          }),
        );
  const { $metadata: _meta, ...data } = answer;
  print(query(JSON.parse(JSON.stringify(data)), opts.values.get('--query')), opts.values.get('--output') ?? 'json');
} catch (e) {
  const err = e instanceof Error ? e : new Error(String(e));
  fail(254, `\nAn error occurred (${err.name}) when calling the ${opName} operation: ${err.message}`);
}

#!/usr/bin/env node
// mechanic runs its TypeScript sources directly through tsx's loader: one source of truth,
// no build step between an edit and the command that runs it.
import { register } from 'tsx/esm/api';

// The AWS SDK is pinned to a release that supports Node 20 (see package.json); its warning that
// later releases will not would otherwise interleave with every command's one-line errors.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

// Everything mechanic writes (keys, tokens, the audit log, Temporal's database, logs) is for its owner only; the
// parts and the Temporal server inherit this from the process that starts them.
process.umask(0o077);

register();
await import('../cli/main.ts');

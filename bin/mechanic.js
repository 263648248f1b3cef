#!/usr/bin/env node
// mechanic runs its TypeScript sources directly through tsx's loader: one source of truth,
// no build step between an edit and the command that runs it.
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');

/**
 * The audit log's public face, for code outside the core: the vocabulary (audit-events.ts), the
 * hash chain (audit-chain.ts), signed checkpoints (audit-checkpoint.ts) and the execution index
 * (execution-index.ts). Workflow code must import audit-events.ts directly: this module pulls in
 * node:crypto, which Temporal's sandbox refuses.
 */
export * from './audit-events.ts';
export * from './audit-chain.ts';
export * from './audit-checkpoint.ts';
export * from './execution-index.ts';
export { canonicalJson, NonJsonValueError } from './canonical.ts';

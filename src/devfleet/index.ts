/**
 * devfleet: the embedded stand-in for AWS STS and SSM Run Command, for development and tests.
 * Start it with startDevfleet and point the real SDK clients at its endpoint.
 */
export {
  FleetConfigSchema,
  parseFleetConfig,
  defaultFleetConfig,
  DEMO_ROLE_ARN,
  DEMO_INSTANCE_IDS,
  DEMO_HOST_NAMES,
} from './config.ts';
export type { FleetConfig, FleetInstance, FleetRole } from './config.ts';
export { startDevfleet } from './server.ts';
export type { Devfleet, DevfleetOptions } from './server.ts';
export { readCommandLog } from './command-log.ts';
export type { CommandLogEntry } from './command-log.ts';
export { packedPolicySizePercent } from './packed-policy.ts';

import type { RouteOutput } from '../../src/api/contract.ts';

/** The API's shapes, as the screens use them. */
export type Me = RouteOutput<'me'>['user'];
export type Execution = RouteOutput<'getExecution'>['execution'];
export type ExecutionSummary = RouteOutput<'listExecutions'>['executions'][number];
export type PlanInfo = RouteOutput<'plan'>['plan'];
export type { RunbookInfo } from '../../src/api/schemas.ts';

/** What every screen gets from the app: the space it has, whether it has the keyboard, and how to say it is typing. */
export interface ScreenProps {
  readonly width: number;
  readonly height: number;
  /** False while the help overlay or another screen has the keyboard. */
  readonly active: boolean;
  /** A text field has the keyboard: global keys (?, q, 1-3) are typed, not acted on. */
  readonly setTyping: (typing: boolean) => void;
}
